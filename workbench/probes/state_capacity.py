"""State capacity: how many planted keys a DeltaNet state holds before recall falls.

Multi-query associative recall (data.gen_assoc_recall, held-out seed space, suite "state_capacity:P<n>:L<ctx>"):
n pairs "key = 817 ;" planted back to back (context 0) or scattered through filler up to `context` tokens, then
" recall :" and up to `queries` queries. One observed forward over the whole text per prompt:
    accuracy         fraction of the queries answered exactly (teacher-forced, probes/long_context.py);
    per DeltaNet layer and planted pair i (its last token as key and value position, like `needle_recall_pairs`),
    read at the row that predicts the first answer, i.e. after every pair and the recall cue were written:
    retention_cos / retention_ratio   S_t^T k against S_key^T k (ops.state_norms.retention_metrics);
    recall_cos                        S_t^T k against the raw v (state_recall.cos).
Rows are indexed by keys_after = n - 1 - i (pairs written after pair i): the capacity curve is retention against
keys_after, per layer and pair count.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..adapters import LINEAR_ATTENTION
from ..capture import CaptureSettings, capture
from ..capture.recorder import SequenceInfo
from ..loading import LoadedModel
from ..nano.data import gen_assoc_recall, pair_tokens
from ..trace.schema import table_schema
from ..tracing import write_probe_run
from .long_context import ProbePrompt, answers_exact, check_lengths, heldout_rng, model_device, prompt_from_doc

NANO_PAIRS = (1, 2, 4, 8, 16, 32, 64)
NANO_CONTEXTS = (0, 1024)


def capacity_prompt(tokenizer, pairs: int, context: int, queries: int, seed: int, index: int) -> ProbePrompt:
    suite = f"state_capacity:P{pairs}:L{context}"
    doc = gen_assoc_recall(heldout_rng(suite, seed, index), n_pairs=pairs, n_queries=min(queries, pairs),
                           n_tokens=context or None)
    return prompt_from_doc(tokenizer, doc, f"{suite}:{index}")


def observe_capacity(model, adapter, prompt: ProbePrompt, pairs: int, settings: CaptureSettings) -> dict:
    """One observed forward -> {"exact": [queries] bool, "layers": [L], and [L, pairs] arrays "retention_cos",
    "retention_ratio", "recall_cos" (mean over value heads), ordered by planted pair}."""
    planted = [prompt.span(f"pair_{i}") for i in range(pairs)]
    keys = [[s.end_token - 1, s.end_token - 1] for s in planted]
    read_at = prompt.answers[0][0] - 1  # the row that predicts the first answer: every pair has been written
    ids = torch.tensor([prompt.ids], device=model_device(model))
    with torch.inference_mode(), capture(model, settings, adapter) as run:
        recorder = run.recorder("deltanet")
        run.begin_sequence(SequenceInfo(prompt.prompt_id, len(prompt.ids), ()))
        recorder.set_recall_pairs(keys)
        logits = model(input_ids=ids, use_cache=False).logits[0]
        stats = run.collect("deltanet")
    row = stats.positions.tolist().index(read_at)

    def at_read(x):  # [L, P, N, H] -> [L, P] mean over heads
        return x[:, :, row].mean(-1).numpy()

    return {"exact": answers_exact(logits, ids[0], prompt.answers), "layers": stats.layers,
            "retention_cos": at_read(stats.recall_retention_cos), "retention_ratio": at_read(stats.recall_retention_ratio),
            "recall_cos": at_read(stats.recall_cos)}


def capacity_rows(pairs: int, context: int, results: list[dict]) -> dict[str, list]:
    """state_capacity rows of one (pairs, context) cell, averaged over its prompts."""
    columns = {c.name: [] for c in table_schema("state_capacity")}
    accuracy = float(np.mean([x for r in results for x in r["exact"]]))
    means = {name: np.mean([r[name] for r in results], 0) for name in ("retention_cos", "retention_ratio", "recall_cos")}
    for li, layer in enumerate(results[0]["layers"]):
        for i in range(pairs):
            row = {"pairs": pairs, "context_length": context, "layer": layer, "keys_after": pairs - 1 - i,
                   "prompts": len(results), "accuracy": accuracy,
                   **{name: float(value[li, i]) for name, value in means.items()}}
            for name in columns:
                columns[name].append(row[name])
    return columns


def run_state_capacity(loaded: LoadedModel, out: str | Path, pair_counts=NANO_PAIRS, contexts=NANO_CONTEXTS,
                       prompts: int = 2, queries: int = 8, seed: int = 0, deltanet_path: str = "auto",
                       progress: bool = True) -> tuple[str, pa.Table]:
    """Every (pair count, context) cell with `prompts` held-out prompts; appends one run with table state_capacity.
    A cell whose context is too short for its pairs is skipped (listed in the manifest's probe.skipped)."""
    if prompts < 1 or queries < 1 or not pair_counts or min(pair_counts) < 1:
        raise ValueError(f"state_capacity needs pair counts >= 1, prompts >= 1, queries >= 1; got {pair_counts}, "
                         f"{prompts}, {queries}")
    model, adapter = loaded.model, loaded.adapter
    if LINEAR_ATTENTION not in adapter.layer_kinds(model.config):
        raise ValueError(f"{adapter.name}: no DeltaNet (linear-attention) layer: state capacity has nothing to read")
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_path=deltanet_path)
    started = datetime.now(timezone.utc)
    cells = [(p, c) for c in contexts for p in pair_counts]
    skipped = [[p, c] for p, c in cells if c and c < pair_tokens(p, min(queries, p))]
    cells = [(p, c) for p, c in cells if [p, c] not in skipped]
    parts, records = [], []
    schema = table_schema("state_capacity")
    bar = tqdm(total=len(cells) * prompts, desc="state capacity", unit="prompt", disable=not progress)
    for pairs, context in cells:
        results = []
        for index in range(prompts):
            prompt = capacity_prompt(loaded.tokenizer, pairs, context, queries, seed, index)
            check_lengths([prompt], model)
            results.append(observe_capacity(model, adapter, prompt, pairs, settings))
            records.append({"id": prompt.prompt_id, "num_tokens": len(prompt.ids), "label": "assoc_recall"})
            bar.update()
        parts.append(pa.table(capacity_rows(pairs, context, results), schema=schema))
    bar.close()
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    run = write_probe_run(loaded, out, [("state_capacity", table)], settings, records, started, probe={
        "name": "state_capacity", "pair_counts": list(pair_counts), "contexts": list(contexts),
        "prompts": prompts, "queries": queries, "seed": seed, "skipped": skipped, "prompt_space": "nano-heldout"})
    return run.run_id, table
