"""Prune what-if sweep (an INTERVENTION, see interventions/expert_mask.py): mask a fraction of each MoE layer's experts,
chosen by a criterion, and measure held-out loss and task accuracy against the unmasked model.

Criteria (per layer, from saliency captured on calibration text the evaluation never reads):
  frequency  mask the experts chosen least often (top-k selections)
  reap       mask the experts with the lowest REAP score (mean router gate x ||expert output||; never chosen = 0)
  random     mask a seeded random set
Ties are broken by expert id. Calibration text: the nano's six domains from held-out seed `calibration_seed`;
loss: the same domains from held-out seed `seed` (mean next-token cross entropy, nats); accuracy: greedy exact match
on nano held-out suites from seed `seed`, scored teacher-forced in one batched forward per suite
(`forced_exact_match`: the same verdict as the greedy decoding of `exact_match` in the repository's nano/evaluate.py,
which a test checks, at a fraction of the cost on a CPU).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..capture import CaptureSettings, capture
from ..interventions import mask_experts
from ..loading import LoadedModel
from ..nano import data
from ..nano.data import domain_stream, encode_for_exact_match
from ..nano.tokenizer import PAD_ID
from ..trace.schema import table_schema
from ..tracing import write_probe_run

CRITERIA = ("frequency", "reap", "random")
DEFAULT_FRACTIONS = (0.1, 0.25, 0.5)
DEFAULT_SUITES = ("passkey_1024", "assoc_recall_16pairs_compact", "arithmetic_mul", "code_256")


@dataclass
class LayerSaliency:
    """Calibration saliency per MoE layer: layers [L]; count [L, E] selections; reap [L, E] mean gate x ||output||
    over the selections (0 where never chosen)."""

    layers: list[int]
    count: np.ndarray
    reap: np.ndarray


@torch.inference_mode()
def calibration_saliency(loaded: LoadedModel, streams: list[list[int]]) -> LayerSaliency:
    """Expert saliency over equal-length token streams (one batched forward) under capture(expert_saliency=True)."""
    model = loaded.model
    device = next(model.parameters()).device
    with capture(model, CaptureSettings(routing=False, expert_saliency=True), loaded.adapter) as run:
        model(input_ids=torch.tensor(streams, device=device), use_cache=False)
        record = run.collect("expert_saliency")
    count, reap_sum = record.count.numpy().astype(np.float64), record.reap_sum.numpy()
    return LayerSaliency(record.layers, count.astype(np.int64),
                         np.divide(reap_sum, count, out=np.zeros_like(count), where=count > 0))


def experts_to_mask(saliency: LayerSaliency, criterion: str, fraction: float, seed: int = 0) -> dict[int, list[int]]:
    """Decoder-layer index -> the round(fraction x E) expert ids to mask at that layer under `criterion`."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown pruning criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    num_experts = saliency.count.shape[1]
    n = int(round(fraction * num_experts))
    plan = {}
    for row, layer in enumerate(saliency.layers):
        if criterion == "random":
            order = random.Random(f"expert-pruning:{seed}:{layer}").sample(range(num_experts), num_experts)
        else:
            score = saliency.count[row] if criterion == "frequency" else saliency.reap[row]
            order = np.lexsort((np.arange(num_experts), score)).tolist()  # ascending score, then id
        plan[layer] = sorted(order[:n])
    return plan


def _right_padded(rows: list[list[int]], device: torch.device) -> torch.Tensor:
    """[B, T_max] ids, each row right-padded with PAD_ID (causal attention and the DeltaNet recurrence never look
    right, so padding changes no row's logits at its own positions)."""
    ids = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, device=device)
    return ids


@torch.inference_mode()
def forced_exact_match(model: torch.nn.Module, tokenizer, records: list[dict]) -> list[bool]:
    """Per record: would greedy decoding produce the answer and the token after it (exact_match of nano/evaluate.py)?
    Teacher-forced: the prompt plus the gold continuation in one forward; exact when the argmax at every answer
    position is the gold token. Greedy decoding matches the gold iff each step's argmax, given the gold prefix, is
    the next gold token, so the verdict is the same; one batched forward instead of one per generated token."""
    device = next(model.parameters()).device
    encoded = [encode_for_exact_match(tokenizer, r) for r in records]
    ids = _right_padded([prompt + gold[:-1] for prompt, gold in encoded], device)  # [B, T]
    predicted = model(input_ids=ids, use_cache=False).logits.argmax(-1)  # [B, T]
    return [predicted[i, len(prompt) - 1: len(prompt) - 1 + len(gold)].tolist() == gold
            for i, (prompt, gold) in enumerate(encoded)]


@torch.inference_mode()
def heldout_loss(model: torch.nn.Module, streams: list[list[int]]) -> tuple[float, int]:
    """(mean next-token cross entropy in nats, tokens scored) over equal-length streams, one batched forward."""
    device = next(model.parameters()).device
    ids = torch.tensor(streams, device=device)  # [B, T]
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()  # [B, T-1, V]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    return float(loss), ids[:, 1:].numel()


def pruning_rows(loaded: LoadedModel, suites: dict[str, list[dict]], loss_streams: list[list[int]],
                 plan: dict[int, list[int]], criterion: str, fraction: float) -> list[dict]:
    """Loss and exact match of the model routed under `plan` (masked experts per layer): one row per metric."""
    masked_per_layer = len(next(iter(plan.values()), []))
    base = {"intervention": "expert_mask", "criterion": criterion, "fraction": fraction,
            "masked_per_layer": masked_per_layer}
    with mask_experts(loaded.model, plan, loaded.adapter):
        loss, tokens = heldout_loss(loaded.model, loss_streams)
        rows = [{**base, "suite": "heldout_loss", "n": tokens, "metric": "loss", "value": loss}]
        for suite, records in suites.items():
            exact = forced_exact_match(loaded.model, loaded.tokenizer, records)
            rows.append({**base, "suite": suite, "n": len(records), "metric": "exact_match",
                         "value": sum(exact) / len(exact)})
    return rows


def sweep(loaded: LoadedModel, suites: tuple[str, ...] = DEFAULT_SUITES, n: int = 8,
          fractions: tuple[float, ...] = DEFAULT_FRACTIONS, criteria: tuple[str, ...] = CRITERIA, seed: int = 0,
          calibration_seed: int = 1, calibration_tokens: int = 512, loss_tokens: int = 256,
          progress: bool = True) -> tuple[list[dict], LayerSaliency]:
    """Rows of table `expert_pruning` (baseline 'none' first) and the calibration saliency they were chosen from."""
    calibration = [domain_stream(d, calibration_seed, calibration_tokens) for d in data.DOMAINS]
    loss_streams = [domain_stream(d, seed, loss_tokens) for d in data.DOMAINS]
    saliency = calibration_saliency(loaded, calibration)
    records = {suite: data.heldout_records(suite, seed, n) for suite in suites}
    layers = saliency.layers
    cells = [("none", 0.0)] + [(c, f) for f in fractions for c in criteria]
    rows = []
    for criterion, fraction in tqdm(cells, desc="pruning what-if", unit="cell", disable=not progress):
        plan = {layer: [] for layer in layers} if criterion == "none" else \
            experts_to_mask(saliency, criterion, fraction, seed)
        rows += pruning_rows(loaded, records, loss_streams, plan, criterion, fraction)
    return rows, saliency


def write_pruning_run(loaded: LoadedModel, rows: list[dict], out: str | Path, probe: dict) -> str:
    """Append one run holding table `expert_pruning`; returns its run id."""
    started = datetime.now(timezone.utc)
    table = pa.Table.from_pylist(rows, schema=table_schema("expert_pruning"))
    return write_probe_run(loaded, out, [("expert_pruning", table)],
                           CaptureSettings(routing=False, expert_saliency=True), [], started,
                           probe={"name": "expert_pruning", "intervention": "expert_mask", **probe}).run_id


def best_criterion(rows: list[dict]) -> dict[float, str]:
    """fraction -> the criterion with the highest mean exact match over suites (ties: lower loss)."""
    best = {}
    for fraction in sorted({r["fraction"] for r in rows if r["criterion"] != "none"}):
        scores = {}
        for criterion in sorted({r["criterion"] for r in rows if r["fraction"] == fraction}):
            cell = [r for r in rows if r["fraction"] == fraction and r["criterion"] == criterion]
            accuracy = np.mean([r["value"] for r in cell if r["metric"] == "exact_match"])
            loss = next(r["value"] for r in cell if r["metric"] == "loss")
            scores[criterion] = (accuracy, -loss if math.isfinite(loss) else -math.inf)
        best[fraction] = max(scores, key=scores.get)
    return best
