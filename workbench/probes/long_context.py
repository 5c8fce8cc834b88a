"""Shared pieces of the long-context probes (needle_sweep, state_capacity, layer_ablation): held-out prompts, their
token spans, and teacher-forced exact match.

Held-out prompts: every probe draws its nano records from the held-out seed space,
random.Random(f"nano-heldout:{seed}:{suite}:{i}") (workbench/nano/data.py), with a suite name of its own
(e.g. "needle_sweep:L1024:d0.25"), so they are never training text.

Exact match is teacher-forced: one forward over prompt + answer; the answer is exact when the argmax at every
position before an answer token is that token. This equals greedy decoding's verdict on the answer's tokens (greedy
produces the answer iff each step's argmax is the next answer token, and the forced prefix is then what greedy fed
itself), without a decode loop, so the same forward also serves the capture.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..inputs.spans import TextSpan, TokenSpan, encode, spans_to_tokens, token_offsets
from ..tracing.batching import max_positions, too_long


def heldout_rng(suite: str, seed: int, index: int) -> random.Random:
    """The generator of held-out record `index` of `suite` (the nano held-out namespace, never training's)."""
    return random.Random(f"nano-heldout:{seed}:{suite}:{index}")


@dataclass
class ProbePrompt:
    """One prompt, tokenized. ids: [T] with <bos>; spans: TokenSpan per named span (token indices into ids);
    answers: (start, end) token ranges of the answers to score, in order."""

    prompt_id: str
    ids: list[int]
    spans: list[TokenSpan]
    answers: list[tuple[int, int]]

    def span(self, name: str) -> TokenSpan:
        return next(s for s in self.spans if s.name == name)


def prompt_from_doc(tokenizer, doc, prompt_id: str) -> ProbePrompt:
    """A nano data.Doc -> ProbePrompt: the text tokenized as tracing does (`spans.encode`), its spans as token
    ranges (the nano tokenizer: one token per piece after <bos>; any other fast tokenizer: through its character
    offsets); answers = the spans named "answer" (every query's value), in order. Repeated span names get _1, _2."""
    text = "".join(doc.pieces)
    ids = encode(tokenizer, text)
    offset = len(ids) - len(doc.pieces)
    if offset in (0, 1):  # the nano tokenizer: one token per piece (after <bos>)
        ranges = [(t0 + offset, t1 + offset) for _, _, _, t0, t1 in doc.spans]
    else:  # another tokenizer (a real checkpoint): map the character spans through its offsets
        ids, offsets = token_offsets(tokenizer, text)
        mapped = spans_to_tokens([TextSpan(f"s{i}", c0, c1) for i, (_, c0, c1, _, _) in enumerate(doc.spans)], offsets)
        ranges = [(s.start_token, s.end_token) for s in mapped]
    spans, answers, seen = [], [], {}
    for (name, c0, c1, _, _), (t0, t1) in zip(doc.spans, ranges):
        if name == "answer":
            answers.append((t0, t1))
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique = name if count == 0 else f"{name}_{count}"
        spans.append(TokenSpan(unique, c0, c1, t0, t1, False))
    return ProbePrompt(prompt_id, ids, spans, answers)


def check_lengths(prompts, model: torch.nn.Module) -> None:
    """Refuse in one line, before their forward, probe prompts longer than the model's max_position_embeddings (the
    same refusal as tracing's: `tracing.batching.too_long`)."""
    limit = max_positions(model.config)
    for prompt in prompts:
        if limit is not None and len(prompt.ids) > limit:
            raise too_long(prompt.prompt_id, len(prompt.ids), limit, None)


def answer_query_span(answer: tuple[int, int]) -> TokenSpan:
    """The query rows that produce an answer: positions start-1 .. end-2 (each predicts the next answer token),
    as a query span (attention and DeltaNet contribution analyse its tokens)."""
    start, end = answer
    return TokenSpan("answer_query", 0, 0, start - 1, end - 1, True)


def answers_exact(logits: torch.Tensor, ids: torch.Tensor, answers: list[tuple[int, int]]) -> list[bool]:
    """Teacher-forced exact match of each answer. logits: [T, vocab] of one sequence; ids: [T]; answers: token
    ranges (start >= 1) -> one bool per answer: argmax at t - 1 equals ids[t] for every answer token t."""
    predicted = logits.argmax(-1)  # [T]
    return [bool(torch.equal(predicted[start - 1:end - 1], ids[start:end])) for start, end in answers]


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
