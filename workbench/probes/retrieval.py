"""Retrieval-head probe: let the model copy a needle (greedy, with a KV cache) under attention capture and score
each full-attention head by how often its most-attended key is the needle token being produced
(`analysis.retrieval`). `trace_retrieval` appends the scores to a trace folder as table `retrieval`.

Step s runs one forward call (the prompt at s = 0, then the token produced at s - 1) and produces token s:
the greedy argmax of the call's last logits, or, with `targets`, the forced target (teacher forcing: the
needle is copied even by a model that would not). The query scored at step s is the call's last token.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..analysis.retrieval import copy_hits, retrieval_scores
from ..capture import CaptureSettings, capture
from ..inputs.prompts import Prompt
from ..inputs.spans import parse_spans, spans_to_tokens, token_offsets
from ..loading import LoadedModel
from ..trace.schema import table_schema
from ..trace.tables import seq_column, spans_table, tokens_table
from ..tracing import token_strings, write_probe_run


def retrieval_table(seq_id: str, layers: Sequence[int], steps: int, hits: np.ndarray) -> pa.Table:
    """hits: [L, H] copy hits over `steps` greedy steps -> one row per (layer, head) with score hits / steps."""
    num_layers, num_heads = hits.shape
    return pa.table(
        {
            "seq_id": seq_column(seq_id, num_layers * num_heads),
            "layer": np.repeat(np.asarray(layers, dtype=np.int16), num_heads),
            "head": np.tile(np.arange(num_heads, dtype=np.int16), num_layers),
            "steps": np.full(num_layers * num_heads, steps, dtype=np.int32),
            "hits": hits.reshape(-1).astype(np.int32),
            "score": (hits.reshape(-1) / max(steps, 1)).astype(np.float32),
        },
        schema=table_schema("retrieval"),
    )


@dataclass
class CopyRun:
    """One copy of a needle. S = steps, L = full-attention layers, H = query heads.

    layers:      [L] decoder-layer index of each full-attention layer.
    context_ids: [T + S - 1] token ids fed to the model: the prompt, then the produced tokens but the last.
    produced:    [S] token produced at each step (greedy argmax, or the forced target).
    argmax_keys: [S, L, H] key position each head attended most from the step's query (the call's last token).
    needle:      (start, end) token positions of the needle in the prompt.
    hits:        [S, L, H] bool: the head copied (argmax key inside the needle and holding the produced token).
    """

    layers: list[int]
    context_ids: np.ndarray
    produced: np.ndarray
    argmax_keys: np.ndarray
    needle: tuple[int, int]
    hits: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        """[L, H] retrieval score per head: fraction of steps where it copied."""
        return retrieval_scores(self.hits)


def _cache_kwarg(model: torch.nn.Module) -> str:
    """transformers 5.24 calls the KV cache argument `cache`; earlier 5.x `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


@torch.inference_mode()
def copy_with_attention(
    model: torch.nn.Module,
    prompt_ids: Sequence[int],
    needle: tuple[int, int],
    steps: int | None = None,
    targets: Sequence[int] | None = None,
    adapter=None,
) -> CopyRun:
    """Greedy-decode `steps` tokens (default: the needle's length) after `prompt_ids` and record, per step and
    head, the most-attended key of every full-attention layer. `targets` forces the produced tokens."""
    start, end = needle
    if not 0 <= start < end <= len(prompt_ids):
        raise ValueError(f"needle [{start}, {end}) is not a non-empty range of the {len(prompt_ids)} prompt tokens")
    steps = end - start if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if targets is not None and len(targets) < steps:
        raise ValueError(f"{len(targets)} targets for {steps} steps")
    device = next(model.parameters()).device
    settings = CaptureSettings(routing=False, attention=True, attention_stride=0, attention_topk=1)
    context, produced, argmax_keys = list(prompt_ids), [], []
    cache_kwarg = _cache_kwarg(model)
    with capture(model, settings, adapter) as run:
        run.recorder("attention").set_sequence([("needle", start, end)])
        output = model(input_ids=torch.tensor([context], device=device), use_cache=True)
        for step in range(steps):
            stats = run.collect("attention")
            argmax_keys.append(stats.topk_pos[:, 0, -1, :, 0].numpy())  # [L, H] of the call's last token
            token = int(output.logits[0, -1].argmax()) if targets is None else int(targets[step])
            produced.append(token)
            if step + 1 < steps:
                context.append(token)
                output = model(input_ids=torch.tensor([[token]], device=device), use_cache=True,
                               **{cache_kwarg: _cache_of(output)})
    keys = np.stack(argmax_keys)
    produced_arr = np.asarray(produced, dtype=np.int64)
    context_arr = np.asarray(context, dtype=np.int64)
    return CopyRun(
        layers=list(stats.layers),
        context_ids=context_arr,
        produced=produced_arr,
        argmax_keys=keys,
        needle=(start, end),
        hits=copy_hits(keys, context_arr, produced_arr, (start, end)),
    )


@dataclass
class RetrievalSummary:
    run_id: str
    manifest_path: Path
    num_sequences: int
    scores: dict[str, np.ndarray]  # seq_id -> [L, H]


def trace_retrieval(
    loaded: LoadedModel,
    prompts: list[Prompt],
    out: str | Path,
    needle: str = "needle",
    steps: int | None = None,
    teacher_forcing: bool = False,
    progress: bool = True,
) -> RetrievalSummary:
    """Copy the span named `needle` of every prompt and append one run (tables tokens, spans, retrieval).

    The model reads the prompt's `prompt` key when given (a prefix of `text` ending where the answer starts, as the
    nano probe records have it), else `text`. Spans are character offsets into `text`.
    """
    model, tokenizer = loaded.model, loaded.tokenizer
    started = datetime.now(timezone.utc)
    records, scores, tables = [], {}, []
    vocab = token_strings(tokenizer)
    for prompt in tqdm(prompts, desc="copying", unit="prompt", disable=not progress):
        text = prompt.extra.get("prompt") or prompt.text
        if not prompt.text.startswith(text):
            raise ValueError(f"prompt {prompt.id!r}: its 'prompt' is not a prefix of its 'text'")
        ids, offsets = token_offsets(tokenizer, text)
        spans = spans_to_tokens(parse_spans(prompt.extra.get("spans", []), prompt.text), offsets)
        found = [s for s in spans if s.name == needle and s.end_token > s.start_token]
        if not found:
            raise ValueError(f"prompt {prompt.id!r} has no span {needle!r} inside the text the model reads")
        span = found[0]
        targets = ids[span.start_token : span.end_token] if teacher_forcing else None
        copy = copy_with_attention(model, ids, (span.start_token, span.end_token), steps, targets, loaded.adapter)
        tables += [("tokens", tokens_table([prompt.id], [ids], [prompt.label], vocab)),
                   ("spans", spans_table(prompt.id, spans)),
                   ("retrieval", retrieval_table(prompt.id, copy.layers, len(copy.produced), copy.hits.sum(0)))]
        scores[prompt.id] = copy.scores
        records.append({"id": prompt.id, "label": prompt.label, "num_tokens": len(ids), "text": text,
                        "needle": [span.start_token, span.end_token],
                        "produced": tokenizer.decode(copy.produced.tolist()),
                        "needle_text": tokenizer.decode(ids[span.start_token : span.end_token])})
    run = write_probe_run(loaded, out, tables,
                          CaptureSettings(routing=False, attention=True, attention_stride=0, attention_topk=1),
                          records, started,
                          probe={"name": "retrieval_heads", "needle": needle, "steps": steps,
                                 "teacher_forcing": teacher_forcing})
    return RetrievalSummary(run.run_id, run.manifest_path, len(prompts), scores)
