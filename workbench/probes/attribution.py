"""Direct logit attribution on held-out passkey prompts: trace them with `--attribution` (the answer span's digits,
teacher forced) and summarise who writes the answer: the share of the answer logit per component group (attention,
DeltaNet, shared and routed experts, embedding), the top heads and the top routed experts (analysis/attribution.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.attribution import contributions_by_group, top_components
from ..analysis.db import Scope, TraceDB
from ..capture import CaptureSettings
from ..inputs.prompts import Prompt
from ..loading import LoadedModel
from ..nano.data import gen_passkey
from ..tracing import trace_prompts
from .long_context import heldout_rng


def passkey_prompts(prompts: int, length: int, seed: int) -> list[Prompt]:
    """Held-out passkey prompts (the nano's suite) with their named spans (needle, query, answer) as prompt spans."""
    out = []
    for index in range(prompts):
        doc = gen_passkey(heldout_rng("attribution", seed, index), n_tokens=length)
        spans = [{"name": name, "start": c0, "end": c1} for name, c0, c1, _, _ in doc.spans]
        out.append(Prompt(f"passkey{index}", "".join(doc.pieces), "passkey", {"spans": spans}))
    return out


def run_attribution(loaded: LoadedModel, out: str | Path, prompts: int = 8, length: int = 256,
                    seed: int = 0, progress: bool = True) -> tuple[str, dict[str, pd.DataFrame]]:
    """Trace the prompts with routing and attribution into one run of `out`; returns (run id, {"groups", "heads",
    "experts"}) summaries over every attributed answer position."""
    summary = trace_prompts(loaded, passkey_prompts(prompts, length, seed), out,
                            CaptureSettings(attribution=True), progress=progress, name="attribution")
    db = TraceDB(out)
    scope = Scope(summary.run_id)
    return summary.run_id, {"groups": contributions_by_group(db, scope), "heads": top_components(db, scope, "head", 5),
                            "experts": top_components(db, scope, "expert", 5)}
