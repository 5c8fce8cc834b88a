"""Library side of probes/mtp_acceptance.py: trace prompts with the MTP head (capture/mtp/) and report its
draft acceptance by prompt label, position and context length, and its routing overlap with the trunk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.db import Scope, TraceDB
from ..analysis.mtp import acceptance_by_label, acceptance_by_length, acceptance_by_position, mtp_routing_overlap
from ..capture import CaptureSettings
from ..inputs.prompts import Prompt

# one held-out suite per nano domain (workbench.nano.data.HELDOUT_SUITES), so the labels are the six domains
NANO_DOMAIN_SUITES = ("passkey_1024", "assoc_recall_8pairs_512", "copy_16", "arithmetic_add", "code_256", "prose_512")


def nano_domain_prompts(seed: int, n: int) -> list[Prompt]:
    """n held-out records of each nano domain (seed space nano-heldout:<seed>, never training's), label = domain."""
    from ..nano.data import heldout_records

    return [Prompt(r["id"], r["text"], r["label"], {k: v for k, v in r.items() if k not in ("id", "text", "label")})
            for suite in NANO_DOMAIN_SUITES for r in heldout_records(suite, seed, n)]


def trace_mtp(loaded, prompts: list[Prompt], out: str | Path, max_tokens: int | None = None):
    """Append one run with routing and MTP capture to `out`; returns its RunSummary."""
    from ..tracing import trace_prompts

    return trace_prompts(loaded, prompts, out, CaptureSettings(routing=True, mtp=True), max_tokens=max_tokens)


def acceptance_report(out: str | Path, run_id: str, mtp_layer: int) -> dict[str, pd.DataFrame]:
    """The probe's tables for one run: by_label, by_position, by_length, routing_overlap."""
    db, scope = TraceDB(out), Scope(run_id)
    return {"by_label": acceptance_by_label(db, scope), "by_position": acceptance_by_position(db, scope),
            "by_length": acceptance_by_length(db, scope),
            "routing_overlap": mtp_routing_overlap(db, scope, mtp_layer)}
