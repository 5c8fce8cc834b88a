"""Needle sweep: context length x needle depth, per layer and head, with both layer kinds measured at the answer.

Per cell (context length L, needle depth d) and held-out passkey prompt (data.gen_passkey, seed space
"nano-heldout", suite "needle_sweep:L<L>:d<d>"), one observed forward over prompt + answer (hooks observe only):
    exact_match              teacher-forced exact match of the answer digits (probes/long_context.py);
    needle_mass              full-attention layers, per query head: needle mass (analysis.needle.head_needle_mass:
                             attention weight on the needle's tokens, mean over rows) at the answer's query rows
                             (the rows that predict the answer tokens, all after the needle);
    deltanet_needle_contribution  DeltaNet layers, per value head: ||needle's part of o_t|| / ||o_t|| at the same
                             rows (capture/deltanet/contribution.py), mean over rows;
    state_retention(_ratio)  DeltaNet layers, per value head: retention of the needle's key in the state at the
                             first answer row, cosine and norm ratio against the readout right after the needle's
                             write (ops.state_norms.retention_metrics).
Values are averaged over the cell's prompts; `sweep_tables` returns the `needle_sweep` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..adapters import FULL_ATTENTION, LINEAR_ATTENTION
from ..analysis import needle
from ..analysis.db import Scope, TraceDB
from ..capture import CaptureSettings, capture
from ..capture.attention.settings import AttentionSettings
from ..capture.deltanet.settings import DeltaNetSettings
from ..capture.recorder import SequenceInfo
from ..loading import LoadedModel
from ..nano.data import gen_passkey
from ..trace.schema import table_schema
from ..tracing import write_probe_run
from .long_context import (ProbePrompt, answer_query_span, answers_exact, check_lengths, heldout_rng, model_device,
                           prompt_from_doc)
from .output import table_text

NANO_LENGTHS = (512, 1024, 2048, 4096, 8192)
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class CellSums:
    """Running sums of one (length, depth) cell over its prompts: layer -> [H] arrays."""

    prompts: int = 0
    exact: int = 0
    mass: dict = field(default_factory=dict)
    contribution: dict = field(default_factory=dict)
    retention: dict = field(default_factory=dict)
    retention_ratio: dict = field(default_factory=dict)

    def add(self, name: str, layer: int, values: np.ndarray) -> None:
        sums = getattr(self, name)
        sums[layer] = sums.get(layer, 0) + values


def sweep_prompt(tokenizer, length: int, depth: float, seed: int, index: int) -> ProbePrompt:
    """Held-out passkey prompt `index` of cell (length, depth)."""
    suite = f"needle_sweep:L{length}:d{depth:g}"
    doc = gen_passkey(heldout_rng(suite, seed, index), n_tokens=length, depth=depth)
    return prompt_from_doc(tokenizer, doc, f"{suite}:{index}")


def observe_prompt(model, adapter, prompt: ProbePrompt, settings: CaptureSettings, sums: CellSums) -> None:
    """One observed forward of `prompt`; adds its exact match and per-layer, per-head measures to `sums`."""
    answer = prompt.answers[-1]
    query = answer_query_span(answer)
    needle_span = prompt.span("needle")
    check_lengths([prompt], model)
    rows = list(range(query.start_token, query.end_token))
    ids = torch.tensor([prompt.ids], device=model_device(model))
    with torch.inference_mode(), capture(model, settings, adapter) as run:
        run.begin_sequence(SequenceInfo(prompt.prompt_id, len(prompt.ids), [needle_span, query]))
        logits = model(input_ids=ids, use_cache=False).logits[0]
        records = run.collect()
    sums.prompts += 1
    sums.exact += int(answers_exact(logits, ids[0], [answer])[0])
    attention = records.get("attention")
    if attention is not None:
        at = [attention.query_positions.tolist().index(p) for p in rows]
        positions = attention.query_positions[at].numpy()  # [Q]
        for i, layer in enumerate(attention.layers):
            mass, _ = needle.head_needle_mass(attention.span_mass["needle"][i, 0, at].float().numpy(), positions,
                                              needle_span.end_token)  # [Q, H] -> [H]
            sums.add("mass", layer, mass)
    deltanet = records.get("deltanet")
    if deltanet is not None:
        at = [deltanet.contribution_positions.tolist().index(p) for p in rows]
        span = deltanet.contribution_spans.index("needle")
        contribution = deltanet.contribution_norm_ratio[:, span, at].mean(1).numpy()  # [L, H]
        first = deltanet.positions.tolist().index(rows[0])
        kept = deltanet.recall_retention_cos[:, 0, first].numpy()  # [L, H]
        kept_ratio = deltanet.recall_retention_ratio[:, 0, first].numpy()
        for i, layer in enumerate(deltanet.layers):
            sums.add("contribution", layer, contribution[i])
            sums.add("retention", layer, kept[i])
            sums.add("retention_ratio", layer, kept_ratio[i])


def cell_rows(length: int, depth: float, sums: CellSums, kinds: list[str]) -> dict[str, list]:
    """needle_sweep rows of one cell: per layer and head, the cell's means (null where a measure does not apply)."""
    columns = {c.name: [] for c in table_schema("needle_sweep")}
    n = max(sums.prompts, 1)
    for layer in sorted({*sums.mass, *sums.contribution}):
        per_head = {"needle_mass": sums.mass.get(layer), "deltanet_needle_contribution": sums.contribution.get(layer),
                    "state_retention": sums.retention.get(layer), "state_retention_ratio": sums.retention_ratio.get(layer)}
        heads = len(next(v for v in per_head.values() if v is not None))
        for head in range(heads):
            row = {"context_length": length, "needle_depth": depth, "layer": layer, "layer_kind": kinds[layer],
                   "head": head, "prompts": sums.prompts, "exact_match": sums.exact / n}
            row.update({k: None if v is None else float(v[head]) / n for k, v in per_head.items()})
            for name in columns:
                columns[name].append(row[name])
    return columns


def sweep_table(cells: list[tuple[int, float, CellSums]], kinds: list[str]) -> pa.Table:
    schema = table_schema("needle_sweep")
    parts = [pa.table(cell_rows(length, depth, sums, kinds), schema=schema) for length, depth, sums in cells]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def run_needle_sweep(loaded: LoadedModel, out: str | Path, lengths=NANO_LENGTHS, depths=DEPTHS, prompts: int = 1,
                     seed: int = 0, deltanet_path: str = "auto", progress: bool = True) -> tuple[str, pa.Table]:
    """Sweep every (length, depth) cell with `prompts` held-out prompts; append one run with table needle_sweep to
    trace folder `out`. Returns (run_id, table)."""
    if not lengths or not depths or prompts < 1:
        raise ValueError(f"needle_sweep needs lengths, depths and prompts >= 1, got {lengths}, {depths}, {prompts}")
    if any(not 0.0 <= d <= 1.0 for d in depths):
        raise ValueError(f"needle depths are fractions in [0, 1], got {list(depths)}")
    model, adapter = loaded.model, loaded.adapter
    kinds = adapter.layer_kinds(model.config)
    if FULL_ATTENTION not in kinds and LINEAR_ATTENTION not in kinds:
        raise ValueError(f"{adapter.name}: no attention or DeltaNet layer to sweep")
    sweep = []  # what each layer kind the model has reads: attention on the needle; the DeltaNet state's recall
    if FULL_ATTENTION in kinds:
        sweep.append(AttentionSettings(attention_stride=0, attention_topk=1))
    if LINEAR_ATTENTION in kinds:
        sweep.append(DeltaNetSettings(deltanet_path=deltanet_path))
    settings = CaptureSettings.of(*sweep)
    check_lengths([sweep_prompt(loaded.tokenizer, max(lengths), max(depths), seed, 0)], model)  # the longest cell first
    started = datetime.now(timezone.utc)
    cells, records = [], []
    bar = tqdm(total=len(lengths) * len(depths) * prompts, desc="needle sweep", unit="prompt", disable=not progress)
    for length in lengths:
        for depth in depths:
            sums = CellSums()
            for index in range(prompts):
                prompt = sweep_prompt(loaded.tokenizer, length, depth, seed, index)
                observe_prompt(model, adapter, prompt, settings, sums)
                records.append({"id": prompt.prompt_id, "num_tokens": len(prompt.ids), "label": "passkey"})
                bar.update()
            cells.append((length, depth, sums))
    bar.close()
    table = sweep_table(cells, kinds)
    run = write_probe_run(loaded, out, [("needle_sweep", table)], settings, records, started, probe={
        "name": "needle_sweep", "lengths": list(lengths), "depths": list(depths), "prompts": prompts,
        "seed": seed, "prompt_space": "nano-heldout"})
    return run.run_id, table


def sweep_report(out: str, run_id: str) -> str:
    """The run's exact match per cell, needle mass per layer (its max head: analysis.needle, what the Long context
    page and README quote) and the DeltaNet measures per layer (mean over heads and cells), as text."""
    db, scope = TraceDB(out), Scope(run_id)
    frame = db.frame("SELECT * FROM needle_sweep WHERE run_id = ?", [run_id])
    exact = frame.groupby(["context_length", "needle_depth"]).exact_match.first().unstack()
    best = needle.max_head(needle.sweep_head_mass(db, scope))
    deltanet = frame[frame.needle_mass.isna()].groupby("layer")[
        ["deltanet_needle_contribution", "state_retention", "state_retention_ratio"]].mean()
    return "\n".join([
        "exact match (rows: context length, columns: needle depth)", table_text(exact),
        f"\n{needle.SWEEP_MAX_HEAD_TITLE}, mean over the sweep's cells", table_text(best, index=False),
        "\nDeltaNet layers (mean over heads and cells)", table_text(deltanet)])
