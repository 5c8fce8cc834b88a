"""Named character spans of a prompt (`spans: [{name, start, end, query?}]`) and the tokens they cover.

A prompt line may carry
    "spans": [{"name": "needle", "start": 120, "end": 131},
              {"name": "question", "start": 400, "end": 431, "query": true}]
with `start`/`end` Python string indices into `text` (characters, end exclusive, 0 <= start < end <= len(text)).
A token belongs to a span when its character range overlaps the span, so a span that starts or ends inside a
token takes the whole token; tokens covering no character (e.g. a <bos> added by the tokenizer) belong to
none. The covered tokens are one contiguous range [start_token, end_token). `query: true` asks the attention
capture to analyse every token of the span as a query row (besides the stride rows and the final token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

SPAN_KEYS = ("name", "start", "end", "query")


class SpanError(ValueError):
    """A malformed `spans` entry; the message names the span."""


@dataclass(frozen=True)
class TextSpan:
    """A named character range of a prompt's text: [start, end) in characters."""

    name: str
    start: int
    end: int
    query: bool = False


@dataclass(frozen=True)
class TokenSpan:
    """A TextSpan and the tokens it covers: [start_token, end_token), empty (equal) when none remain
    (e.g. the span lies past a --max-tokens cut)."""

    name: str
    start_char: int
    end_char: int
    start_token: int
    end_token: int
    query: bool = False

    def as_key_range(self) -> tuple[str, int, int]:
        """(name, first token, end token) as the attention-stats ops take it."""
        return (self.name, self.start_token, self.end_token)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_spans(raw, text: str) -> list[TextSpan]:
    """Validate a prompt's `spans` value against its text. Raises SpanError naming the bad span."""
    if not isinstance(raw, list):
        raise SpanError(f"'spans' must be a list of {{name, start, end}} objects, got {type(raw).__name__}")
    spans: list[TextSpan] = []
    for index, item in enumerate(raw):
        where = f"span {index}"
        if not isinstance(item, dict):
            raise SpanError(f"{where}: expected an object {{name, start, end}}, got {type(item).__name__}")
        unknown = sorted(set(item) - set(SPAN_KEYS))
        if unknown:
            raise SpanError(f"{where}: unknown keys {unknown}; a span has {list(SPAN_KEYS)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SpanError(f"{where}: 'name' must be a non-empty string")
        where = f"span {index} ({name!r})"
        start, end = item.get("start"), item.get("end")
        if not _is_int(start) or not _is_int(end):
            raise SpanError(f"{where}: 'start' and 'end' must be integers (character offsets)")
        if not 0 <= start < end <= len(text):
            raise SpanError(
                f"{where}: [{start}, {end}) is outside the text or empty; need 0 <= start < end <= {len(text)} "
                "(character offsets, end exclusive)"
            )
        query = item.get("query", False)
        if not isinstance(query, bool):
            raise SpanError(f"{where}: 'query' must be true or false")
        if any(s.name == name for s in spans):
            raise SpanError(f"{where}: duplicate span name")
        spans.append(TextSpan(name, start, end, query))
    return spans


def spans_to_tokens(
    spans: Sequence[TextSpan], offsets: Sequence[tuple[int, int]], num_tokens: int | None = None
) -> list[TokenSpan]:
    """Map character spans to token ranges through the tokenizer's offsets ([(char start, char end)] per
    token). A token belongs to a span when start_char < span.end and end_char > span.start. Ranges are cut
    to the first `num_tokens` tokens (default: all)."""
    num_tokens = len(offsets) if num_tokens is None else min(num_tokens, len(offsets))
    result = []
    for span in spans:
        covered = [i for i, (lo, hi) in enumerate(offsets) if hi > lo and lo < span.end and hi > span.start]
        if covered:
            first, end = covered[0], covered[-1] + 1
        else:  # no token covers it: an empty range where the span would start
            first = end = next((i for i, (lo, _) in enumerate(offsets) if lo >= span.end), len(offsets))
        first, end = min(first, num_tokens), min(end, num_tokens)
        result.append(TokenSpan(span.name, span.start, span.end, first, end, span.query))
    return result


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt as tracing feeds them: the tokenizer's own defaults, special tokens included.

    A tokenizer that prepends <bos> (the nano's does; the model was trained on <bos>-led documents) keeps
    it, one that adds nothing (Qwen3-Next's) adds nothing, so the model reads text as it was trained to."""
    return list(tokenizer(text)["input_ids"])


def token_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """(token ids, character offsets) exactly as `encode` tokenizes; added special tokens have empty offsets."""
    if not getattr(tokenizer, "is_fast", False):
        raise SpanError(f"spans need a fast tokenizer (offsets); {type(tokenizer).__name__} has none")
    encoded = tokenizer(text, return_offsets_mapping=True)
    return list(encoded["input_ids"]), [tuple(o) for o in encoded["offset_mapping"]]


def prompt_token_spans(tokenizer, text: str, raw_spans, num_tokens: int | None = None) -> list[TokenSpan]:
    """A prompt's `spans` value -> validated TokenSpans for its first `num_tokens` tokens."""
    spans = parse_spans(raw_spans, text)
    if not spans:
        return []
    _, offsets = token_offsets(tokenizer, text)
    return spans_to_tokens(spans, offsets, num_tokens)
