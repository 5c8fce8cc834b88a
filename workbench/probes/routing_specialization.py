"""Routing specialisation probe: do experts specialise by prompt label (domain) and by token, beyond what a router
at random init already does?

Label-tagged prompts (the nano's six domains by default, from the held-out seed space) are traced twice into one
trace folder: with the model (run `trained`) and with the same config at a seeded random init (run `random_init`).
Per MoE layer, from those runs' routing tables (`workbench.analysis`, the dashboard's own queries):
  label_divergence      Jensen-Shannon divergence (bits) between each pair of labels' expert-load distributions
  label_experts         each label's most over-represented experts (lift = label share / overall share)
  vocab_specialisation  per token id: its most frequent top-1 expert and how fixed that is (top_share)
A third run holds these tables (column `model` says which weights) and names the two routing runs in its manifest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import torch

from ..analysis.balance import MIN_LIFT_SUPPORT, label_divergence, over_represented
from ..analysis.db import Scope, TraceDB
from ..analysis.routing import load_by_label
from ..analysis.routing_structure import vocab_specialisation
from ..capture import CaptureSettings
from ..inputs.prompts import Prompt
from ..loading import LoadedModel
from ..nano import data
from ..trace.schema import table_schema
from ..tracing import trace_prompts, write_probe_run

MODELS = ("trained", "random_init")


def nano_domain_prompts(seed: int = 0, n_per_label: int = 4) -> list[Prompt]:
    """n_per_label held-out records of each nano domain (label = domain), as the nano's routing evaluation draws
    them (namespace nano-heldout:<seed>:routing-<domain>:<i>)."""
    prompts = []
    for domain in data.DOMAINS:
        for i in range(n_per_label):
            doc = data.GENERATORS[domain](random.Random(f"nano-heldout:{seed}:routing-{domain}:{i}"),
                                          **data.ROUTING_PARAMS[domain])
            record = data.make_record(doc, f"{domain}-s{seed}-{i:03d}")
            prompts.append(Prompt(record["id"], record["text"], domain))
    return prompts


def random_init(loaded: LoadedModel, seed: int) -> LoadedModel:
    """The same architecture and config at a seeded random init, on the same device and dtype."""
    parameter = next(loaded.model.parameters())
    torch.manual_seed(seed)
    model = type(loaded.model)(loaded.model.config).to(device=parameter.device, dtype=parameter.dtype).eval()
    return replace(loaded, model=model, source=f"{loaded.source} (random init, seed {seed})")


@dataclass
class SpecializationResult:
    runs: dict[str, str]  # model -> routing run id
    probe_run: str
    label_divergence: pd.DataFrame
    label_experts: pd.DataFrame
    vocab_specialisation: pd.DataFrame

    def mean_js(self) -> dict[str, float]:
        """model -> JS bits averaged over layers and label pairs."""
        return self.label_divergence.groupby("model")["js_bits"].mean().to_dict()


def specialization_tables(db: TraceDB, run_id: str, top: int = 5, min_count: int = 5,
                          min_fraction: float = MIN_LIFT_SUPPORT) -> dict[str, pd.DataFrame]:
    """The probe's three frames for one routing run (no `model` column yet); label_experts ranks only experts with
    at least `min_fraction` of the label's selections (balance.over_represented)."""
    scope = Scope(run_id)
    by_label = load_by_label(db, scope)
    vocab = [vocab_specialisation(db, scope, int(layer), min_count).assign(layer=int(layer))
             for layer in sorted(by_label["layer"].unique())]
    return {"label_divergence": label_divergence(by_label),
            "label_experts": over_represented(by_label, top, min_fraction),
            "vocab_specialisation": pd.concat(vocab, ignore_index=True)}


def run_specialization(loaded: LoadedModel, prompts: list[Prompt], out: str | Path, seed: int = 0, top: int = 5,
                       min_count: int = 5, progress: bool = True,
                       min_fraction: float = MIN_LIFT_SUPPORT) -> SpecializationResult:
    """Trace `prompts` with the model and its random init (two runs), then append the probe's tables (a third)."""
    if not any(p.label for p in prompts):
        raise ValueError("routing specialisation needs prompts with a label")
    started = datetime.now(timezone.utc)
    runs = {"trained": trace_prompts(loaded, prompts, out, CaptureSettings(), progress=progress).run_id,
            "random_init": trace_prompts(random_init(loaded, seed), prompts, out, CaptureSettings(),
                                         progress=progress).run_id}
    db = TraceDB(out)
    frames: dict[str, list[pd.DataFrame]] = {}
    for model, run_id in runs.items():
        for name, frame in specialization_tables(db, run_id, top, min_count, min_fraction).items():
            frames.setdefault(name, []).append(frame.assign(model=model))
    merged = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
    tables = [(name, pa.Table.from_pandas(frame, schema=table_schema(name), preserve_index=False))
              for name, frame in merged.items()]
    run = write_probe_run(loaded, out, tables, CaptureSettings(), [], started,
                          probe={"name": "routing_specialization", "runs": runs, "seed": seed, "top": top,
                                 "min_count": min_count, "min_fraction": min_fraction,
                                 "labels": sorted({p.label for p in prompts if p.label}),
                                 "prompts": len(prompts)})
    return SpecializationResult(runs, run.run_id, merged["label_divergence"], merged["label_experts"],
                                merged["vocab_specialisation"])
