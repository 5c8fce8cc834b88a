"""Layer ablation: an INTERVENTION, not an observation. Replaces the output of chosen token mixers (full-attention
blocks, DeltaNet blocks) and measures what the model can still retrieve.

`ablate_layers(model, adapter, layers, mode)` is a context manager: a forward hook on each chosen layer's mixer
(the adapter's attention or linear-attention block, the module whose output is added to the residual stream)
returns a replaced output:
    "zero"  the block's output [B, T, hidden] set to 0 (the layer's mixer is removed; its MoE MLP still runs);
    "mean"  the output replaced by its mean over the sequence's tokens, per batch row and channel (keeps the
            average contribution, removes everything position-specific; non-causal: later tokens enter the mean).
Its `finally` removes every hook, so the model computes exactly what it computed before, on exit and after an
error inside the block (tests/probes/test_layer_ablation.py: logits torch.equal).

`run_layer_ablation` measures teacher-forced exact match (probes/long_context.py) on held-out passkey and
associative-recall prompts for: no ablation, every full-attention layer, every DeltaNet layer, and each layer alone,
in each mode, and writes table `layer_ablation` (every row labelled intervention = "ablation").
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..adapters import FULL_ATTENTION, LINEAR_ATTENTION
from ..capture import CaptureSettings
from ..capture.recorder import remove_all
from ..loading import LoadedModel
from ..nano.data import gen_assoc_recall, gen_passkey
from ..trace.schema import table_schema
from ..tracing import write_probe_run
from .long_context import answers_exact, check_lengths, heldout_rng, model_device, prompt_from_doc

MODES = ("zero", "mean")
INTERVENTION = "ablation"


def mixer_blocks(model: torch.nn.Module, adapter) -> dict[int, torch.nn.Module]:
    """Decoder-layer index -> token-mixer block (full attention or linear attention), from the adapter."""
    kinds = adapter.layer_kinds(model.config)
    blocks = {}
    for kind in (FULL_ATTENTION, LINEAR_ATTENTION):
        if kind in kinds:
            blocks.update(adapter.layers_of_kind(model, kind))
    return dict(sorted(blocks.items()))


def _replace(output, mode: str):
    hidden = output[0] if isinstance(output, tuple) else output  # [B, T, hidden]
    if mode == "zero":
        new = torch.zeros_like(hidden)
    else:
        new = hidden.mean(dim=1, keepdim=True).expand_as(hidden).clone()
    return (new, *output[1:]) if isinstance(output, tuple) else new


@contextmanager
def ablate_layers(model: torch.nn.Module, adapter, layers, mode: str = "zero"):
    """Within the block, the mixers of `layers` (decoder-layer indices) output zeros or their sequence mean.
    Restores the model on exit and on error. Raises ValueError for an unknown mode or a layer without a mixer."""
    if mode not in MODES:
        raise ValueError(f"ablation mode must be one of {', '.join(MODES)}, got {mode!r}")
    blocks = mixer_blocks(model, adapter)
    missing = sorted(set(layers) - set(blocks))
    if missing:
        raise ValueError(f"layers {missing} have no attention or DeltaNet block; mixer layers: {sorted(blocks)}")
    handles = []
    try:
        for layer in sorted(set(layers)):
            handles.append(blocks[layer].register_forward_hook(lambda module, args, output: _replace(output, mode)))
        yield sorted(set(layers))
    finally:
        remove_all(handles)


def ablation_conditions(kinds: list[str], modes=MODES, single_layers: bool = True) -> list[tuple[str, list, str | None]]:
    """(condition, layers, mode): "none" first, then per mode every full-attention layer, every DeltaNet layer, and
    (single_layers) each mixer layer alone."""
    attention = [i for i, k in enumerate(kinds) if k == FULL_ATTENTION]
    deltanet = [i for i, k in enumerate(kinds) if k == LINEAR_ATTENTION]
    conditions = [("none", [], None)]
    for mode in modes:
        if attention:
            conditions.append(("all full_attention", attention, mode))
        if deltanet:
            conditions.append(("all linear_attention", deltanet, mode))
        if single_layers:
            conditions += [(f"layer {i}", [i], mode) for i in sorted(attention + deltanet)]
    return conditions


def suite_prompts(tokenizer, suite: str, length: int, n: int, seed: int, pairs: int = 8) -> list:
    """n held-out prompts of `suite` ("passkey" or "recall": associative recall with `pairs` pairs in filler)."""
    name = f"layer_ablation:{suite}:L{length}"
    if suite == "passkey":
        docs = [gen_passkey(heldout_rng(name, seed, i), n_tokens=length) for i in range(n)]
    elif suite == "recall":
        docs = [gen_assoc_recall(heldout_rng(name, seed, i), n_pairs=pairs, n_tokens=length) for i in range(n)]
    else:
        raise ValueError(f"unknown ablation suite {suite!r}; suites: passkey, recall")
    return [prompt_from_doc(tokenizer, doc, f"{name}:{i}") for i, doc in enumerate(docs)]


@torch.inference_mode()
def suite_accuracy(model, prompts, batch_size: int = 8) -> float:
    """Fraction of prompts whose last answer is exact (teacher-forced), batched by equal length."""
    device = model_device(model)
    exact = 0
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        by_length = {}
        for p in batch:
            by_length.setdefault(len(p.ids), []).append(p)
        for group in by_length.values():
            ids = torch.tensor([p.ids for p in group], device=device)
            logits = model(input_ids=ids, use_cache=False).logits
            exact += sum(answers_exact(logits[i], ids[i], [p.answers[-1]])[0] for i, p in enumerate(group))
    return exact / len(prompts)


def run_layer_ablation(loaded: LoadedModel, out: str | Path, suites=(("passkey", 1024), ("recall", 512)),
                       prompts: int = 8, seed: int = 0, modes=MODES, single_layers: bool = True,
                       batch_size: int = 8, progress: bool = True) -> tuple[str, pa.Table]:
    """Accuracy per (suite, condition) with the model intervened on; appends one run with table layer_ablation."""
    if prompts < 1:
        raise ValueError(f"prompts must be >= 1, got {prompts}")
    model, adapter = loaded.model, loaded.adapter
    kinds = adapter.layer_kinds(model.config)
    conditions = ablation_conditions(kinds, modes, single_layers)
    started = datetime.now(timezone.utc)
    rows, records = [], []
    bar = tqdm(total=len(suites) * len(conditions), desc="layer ablation", unit="condition", disable=not progress)
    batches = [suite_prompts(loaded.tokenizer, suite, length, prompts, seed) for suite, length in suites]
    for batch in batches:
        check_lengths(batch, model)  # every suite's prompts, before any forward
    for (suite, length), batch in zip(suites, batches):
        records += [{"id": p.prompt_id, "num_tokens": len(p.ids), "label": suite} for p in batch]
        baseline = None
        for condition, layers, mode in conditions:
            with ablate_layers(model, adapter, layers, mode or "zero"):
                accuracy = suite_accuracy(model, batch, batch_size)
            baseline = accuracy if baseline is None else baseline
            rows.append({"intervention": INTERVENTION, "condition": condition, "mode": mode,
                         "layers": layers, "layer_kind": _kind_of(layers, kinds), "suite": suite,
                         "context_length": length, "prompts": prompts, "exact_match": accuracy,
                         "accuracy_drop": baseline - accuracy})
            bar.update()
    bar.close()
    table = pa.Table.from_pylist(rows, schema=table_schema("layer_ablation"))
    run = write_probe_run(loaded, out, [("layer_ablation", table)], CaptureSettings(routing=False), records, started,
                          probe={"name": "layer_ablation", "intervention": True, "suites": [list(s) for s in suites],
                                 "prompts": prompts, "seed": seed, "modes": list(modes),
                                 "prompt_space": "nano-heldout"})
    return run.run_id, table


def _kind_of(layers: list[int], kinds: list[str]) -> str | None:
    found = {kinds[i] for i in layers}
    return found.pop() if len(found) == 1 else None
