"""Prompts -> right-padded batches of token ids, tokenised on a background thread as the run reaches them.

Batches (`batch_tokens`): prompts sorted by length (within a window of WINDOW_BATCHES batches' worth of tokens,
tokenised as the run reaches it: `batches`) are grouped so that rows x longest row <= batch_tokens, and each
batch runs as one right-padded forward with no attention mask. Padding never changes a real token's values: every
layer is causal (attention row t reads keys <= t; the DeltaNet recurrence S_t = f(S_{t-1}, token t) and its causal
conv read tokens <= t; routing, norms and MLPs are per token), and padding sits after the last real token of its
row, so the real tokens compute exactly what they compute at batch 1 (tests/tracing/test_batching.py compares every
table against batch-1 traces). Rotary positions are 0..T-1 in every row, as at batch 1. The padding's own rows are
cut off before any table is built (SequenceInfo.rows). Prompts a recorder cannot batch (DeltaNet recall pairs,
snapshots counted from the end; a recorder without `begin_batch`) run alone.

`prefetched` runs the tokenising (and the padded ids) on its own thread, so the first forward starts after one
window and later windows are tokenised while the forwards run.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator, TypeVar

import numpy as np
import torch

from ..capture import SequenceInfo
from ..inputs.prompts import Prompt
from ..inputs.spans import SpanError, encode, prompt_token_spans

WINDOW_BATCHES = 4  # batches' worth of tokens tokenised and sorted by length together


SPECIAL_TOKENS_BOUND = 16  # tokens a tokenizer may add that cover no text (<bos>, a dummy-prefix piece, ...)


def max_positions(config) -> int | None:
    """The model's position limit, `max_position_embeddings` of its config (or of its text config); None when the
    config states none."""
    for source in (config, getattr(config, "text_config", None)):
        limit = getattr(source, "max_position_embeddings", None)
        if isinstance(limit, int) and limit > 0:
            return limit
    return None


def too_long(prompt_id: str, tokens: int, limit: int, max_tokens: int | None) -> ValueError:
    """The one-line refusal of a prompt beyond the model's position limit."""
    cut = f" (after --max-tokens {max_tokens})" if max_tokens is not None else ""
    return ValueError(f"prompt {prompt_id!r} is {tokens} tokens{cut}, beyond the model's max_position_embeddings "
                      f"({limit}): shorten it, or trace with --max-tokens {limit} to truncate every prompt there (the "
                      f"manifest records each truncation)")


def check_positions(tokenizer, prompts: list[Prompt], max_tokens: int | None, limit: int | None,
                    skip: frozenset[str] = frozenset()) -> None:
    """Refuse, before any forward, a prompt longer than the model's position limit once truncated to `max_tokens`.
    A token covers at least one byte of text, plus at most SPECIAL_TOKENS_BOUND tokens that cover none, so only
    prompts whose UTF-8 length could pass the limit are tokenised here; `encode_prompt` checks every prompt again as
    the run reaches it."""
    if limit is None or (max_tokens is not None and max_tokens <= limit):
        return
    for prompt in prompts:
        if prompt.id in skip or len(prompt.text.encode("utf-8")) + SPECIAL_TOKENS_BOUND <= limit:
            continue
        tokens = len(encode(tokenizer, prompt.text))
        tokens = tokens if max_tokens is None else min(tokens, max_tokens)
        if tokens > limit:
            raise too_long(prompt.id, tokens, limit, max_tokens)


@dataclass
class Encoded:
    """One prompt ready to run: token ids (truncated; `token_ids` an int64 numpy array, so a batch is built by
    array copies, not from Python lists), spans in tokens, and its manifest record. full_tokens: the prompt's
    length before --max-tokens cut it."""

    index: int
    prompt: Prompt
    token_ids: np.ndarray
    spans: list
    full_tokens: int | None = None

    def sequence(self, row: int = 0, padded_tokens: int | None = None) -> SequenceInfo:
        return SequenceInfo(self.prompt.id, len(self.token_ids), self.spans, row, padded_tokens, self.token_ids)

    def record(self) -> dict:
        """The manifest's record of the prompt; `truncated_from` (its full length) when --max-tokens cut it."""
        p = self.prompt
        record = {"id": p.id, "label": p.label, "num_tokens": len(self.token_ids), "text": p.text, **p.extra}
        if self.full_tokens is not None and self.full_tokens > len(self.token_ids):
            record["truncated_from"] = self.full_tokens
        return record


def padded_ids(rows: list[Encoded], pad: int) -> torch.Tensor:
    """[rows, longest] input ids of a batch, each row's tokens first and `pad` after them (right padding)."""
    ids = np.full((len(rows), max(len(e.token_ids) for e in rows)), pad, dtype=np.int64)
    for b, e in enumerate(rows):
        ids[b, : len(e.token_ids)] = e.token_ids
    return torch.from_numpy(ids)


def encode_prompt(tokenizer, index: int, prompt: Prompt, max_tokens: int | None,
                  limit: int | None = None) -> Encoded:
    """One prompt's token ids (truncated to `max_tokens`) and spans; an empty prompt, a bad span or a prompt longer
    than the model's position limit `limit` (after truncation) raises naming the prompt."""
    token_ids = encode(tokenizer, prompt.text)
    full = len(token_ids)
    if max_tokens is not None:
        token_ids = token_ids[:max_tokens]
    if len(token_ids) == 0:
        raise ValueError(f"prompt {prompt.id!r} tokenizes to no tokens")
    if limit is not None and len(token_ids) > limit:
        raise too_long(prompt.id, len(token_ids), limit, max_tokens)
    try:
        spans = prompt_token_spans(tokenizer, prompt.text, prompt.extra.get("spans", []), len(token_ids))
    except SpanError as error:
        raise SpanError(f"prompt {prompt.id!r}: {error}") from None
    return Encoded(index, prompt, np.asarray(token_ids, dtype=np.int64), spans, full)


def batches(tokenizer, prompts: list[Prompt], max_tokens: int | None, batch_tokens: int | None,
            alone=lambda encoded: False, skip: frozenset[str] = frozenset(),
            limit: int | None = None) -> Iterator[list[Encoded]]:
    """The prompts to run, batch by batch, tokenised a window at a time as the run goes (so the first forward
    starts after one window, and the writer's threads work while later windows are tokenised): a window is
    WINDOW_BATCHES x batch_tokens tokens of prompts in file order (one prompt at batch 1), planned by
    `plan_batches`. Prompts in `skip` (committed earlier) are not tokenised; `alone(encoded)` marks prompts that run
    on their own. A bad prompt raises when its window is reached; `limit`: the model's position limit
    (`check_positions` refuses a prompt beyond it before the run starts)."""
    def planned(window):
        for batch in plan_batches([len(e.token_ids) for e in window], batch_tokens, [alone(e) for e in window]):
            yield [window[i] for i in batch]

    window, tokens = [], 0
    for index, prompt in enumerate(prompts):
        if prompt.id in skip:
            continue
        window.append(encode_prompt(tokenizer, index, prompt, max_tokens, limit))
        tokens += len(window[-1].token_ids)
        if not batch_tokens or tokens >= WINDOW_BATCHES * batch_tokens:
            yield from planned(window)
            window, tokens = [], 0
    if window:
        yield from planned(window)


def plan_batches(lengths: list[int], batch_tokens: int | None, alone: list[bool]) -> list[list[int]]:
    """Indices of each batch: none (batch_tokens None) = one prompt per batch in file order; else prompts sorted by
    length (longest first, stable) packed while rows x longest <= batch_tokens, and `alone` prompts on their own."""
    if not batch_tokens:
        return [[i] for i in range(len(lengths))]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        if alone[i]:
            batches.append([i])
            continue
        if current and (len(current) + 1) * lengths[current[0]] > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


Item = TypeVar("Item")


def prefetched(items: Iterator[Item], depth: int) -> Iterator[Item]:
    """`items`, produced on a background thread up to `depth` ahead of the consumer: the prompts are tokenised
    and their batches' input ids built while the main thread runs the forwards (the tokenizer releases the GIL).
    Order is kept, and an exception raised by `items` is raised here when the consumer reaches it (after every item
    before it). Closing the returned generator (contextlib.closing) stops the thread at its next item."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # handed to the consumer, raised in its thread
            put((None, error))

    threading.Thread(target=produce, name="workbench-tokenize", daemon=True).start()
    try:
        while True:
            item, error = ahead.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
