"""Character spans -> token ranges through tokenizer offsets, at and inside token boundaries; clear errors."""

import json

import pytest

from workbench.inputs.prompts import PromptFileError, read_prompts
from workbench.inputs.spans import SpanError, TextSpan, parse_spans, prompt_token_spans, spans_to_tokens, token_offsets


def _ranges(tokenizer, text, spans, num_tokens=None):
    raw = [{"name": name, "start": start, "end": end} for name, start, end in spans]
    return {s.name: (s.start_token, s.end_token) for s in prompt_token_spans(tokenizer, text, raw, num_tokens)}


def test_byte_tokenizer_boundaries(tokenizer):
    """One token per byte: 'é' is two tokens that share the character range (3, 4)."""
    text = "ab é cd"
    ids, offsets = token_offsets(tokenizer, text)
    assert len(ids) == 8 and offsets[3] == offsets[4] == (3, 4)
    got = _ranges(tokenizer, text, [("a", 0, 1), ("b-e", 1, 4), ("e", 3, 4), ("tail", 5, 7), ("all", 0, 7)])
    assert got == {"a": (0, 1), "b-e": (1, 5), "e": (3, 5), "tail": (6, 8), "all": (0, 8)}


@pytest.fixture(scope="module")
def word_tokenizer():
    nano = pytest.importorskip("workbench.nano.tokenizer")
    return nano.build_tokenizer()


def test_word_tokenizer_boundaries(word_tokenizer):
    """Tokens: <bos>(0,0) ' the'(0,4) ' pass'(4,9) ' key'(9,13) ' is'(13,16) ' '(16,17) '1'..'5'(17..22)
    ' .'(22,24): the nano tokenizer prepends <bos> (the model was trained with it), so text tokens start at 1."""
    text = " the pass key is 12345 ."
    ids, offsets = token_offsets(word_tokenizer, text)
    assert ids[0] == word_tokenizer.bos_token_id
    assert offsets[:5] == [(0, 0), (0, 4), (4, 9), (9, 13), (13, 16)]
    got = _ranges(word_tokenizer, text, [
        ("exact", 4, 9),           # exactly ' pass'
        ("starts-inside", 6, 9),   # 'ss' -> the whole ' pass'
        ("ends-inside", 9, 11),    # ' k' -> ' key'
        ("straddles", 2, 6),       # 'he p' -> ' the' and ' pass'
        ("space-only", 4, 5),      # the space that ' pass' starts with
        ("digits", 17, 22),
        ("last-char", 23, 24),
    ])
    assert got == {"exact": (2, 3), "starts-inside": (2, 3), "ends-inside": (3, 4), "straddles": (1, 3),
                   "space-only": (2, 3), "digits": (6, 11), "last-char": (11, 12)}


def test_tokens_without_characters_belong_to_no_span():
    """A <bos> with offsets (0, 0) is never inside a span; a span nothing covers is an empty range."""
    offsets = [(0, 0), (0, 3), (3, 5)]
    spans = [TextSpan("x", 0, 2), TextSpan("y", 3, 5)]
    assert [(s.start_token, s.end_token) for s in spans_to_tokens(spans, offsets)] == [(1, 2), (2, 3)]
    assert [(s.start_token, s.end_token) for s in spans_to_tokens([TextSpan("z", 5, 6)], offsets)] == [(3, 3)]


def test_truncation_cuts_ranges(tokenizer):
    got = _ranges(tokenizer, "abcdefgh", [("early", 1, 3), ("cut", 3, 7), ("gone", 6, 8)], num_tokens=5)
    assert got == {"early": (1, 3), "cut": (3, 5), "gone": (5, 5)}


@pytest.mark.parametrize(
    "spans, match",
    [
        ([{"name": "n", "start": 3, "end": 11}], r"outside the text.*<= 10"),
        ([{"name": "n", "start": -1, "end": 2}], "outside the text"),
        ([{"name": "n", "start": 4, "end": 4}], "or empty"),
        ([{"name": "n", "start": 1.5, "end": 4}], "must be integers"),
        ([{"name": "n", "start": True, "end": 4}], "must be integers"),
        ([{"start": 1, "end": 4}], "'name' must be"),
        ([{"name": "n", "start": 1, "end": 2}, {"name": "n", "start": 3, "end": 4}], "duplicate span name"),
        ([{"name": "n", "start": 1, "end": 2, "stat": 3}], r"unknown keys \['stat'\]"),
        ([{"name": "n", "start": 1, "end": 2, "query": "yes"}], "'query' must be"),
        ({"name": "n"}, "must be a list"),
    ],
    ids=["past-end", "negative", "empty", "float", "bool", "no-name", "duplicate", "unknown-key", "query-type",
         "not-a-list"],
)
def test_bad_spans_are_refused(spans, match):
    with pytest.raises(SpanError, match=match):
        parse_spans(spans, "0123456789")


def test_prompt_file_names_line_and_prompt(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [{"id": "ok", "text": "hello", "spans": [{"name": "h", "start": 0, "end": 1, "query": True}]},
             {"id": "bad", "text": "hi", "spans": [{"name": "needle", "start": 1, "end": 5}]}]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    with pytest.raises(PromptFileError, match=r"line 2 \(prompt 'bad'\): span 0 \('needle'\): \[1, 5\) is outside"):
        read_prompts(path)
    path.write_text(json.dumps(lines[0]))
    assert read_prompts(path)[0].extra["spans"][0]["query"] is True
