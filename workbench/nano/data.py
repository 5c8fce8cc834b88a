"""Synthetic text for the nano model: six domains, exact token counts, character-offset span annotations.

Every generator builds a `Doc` piece by piece (a piece is one token, see `tokenizer.PIECE_PATTERN`), so
token counts are exact without running a tokenizer and spans are known in both characters and tokens.
A record (what `make_record` returns and the probe JSONL holds) is
    {id, text, label, spans: [{name, start, end, query?}] (character offsets into text), answer, prompt, n_tokens}
The span of the record's answer carries "query": true, so attention capture analyses every answer token as
a query row (the model's attention while it produces the retrieved value).
answer = text of the last span named "answer" (None for prose), prompt = text[:answer start] (all of
text for prose), n_tokens = tokens of text without the <bos> the tokenizer prepends. Spans cover whole
tokens: one starting at a word includes its leading space (" apple = 817"); digit spans are just digits.

Domains (label) and spans:
    passkey       "the pass key is 12345 . remember it ." at a depth in prose filler, ending
                  "what is the pass key ? the pass key is 12345 ."; needle (planted digits), query, answer
    assoc_recall  "apple = 817 ;" pairs (scattered through filler when n_tokens is given), " recall :" then queries
                  "tiger = 302 ;"; pair_i (key = value), needle (queried value where planted), query, answer
    copy          "sequence : k apple m . copy : k apple m ."; source, answer (the answer starts with a space)
    arithmetic    "12 + 7 = 19 ; 3 * 8 = 24 ;"; answer per problem (the record's answer is the last one)
    code          small Python-like functions and "name = 42" lines, then "assert name == 42"; needle, answer
    prose         sentences from a small grammar; no spans, no answer

Seed spaces: training draws from random.Random(f"nano-train:{seed}:{stream}"), held-out records from
random.Random(f"nano-heldout:{seed}:{suite}:{i}") (one generator per record, so adding a suite never shifts
another). The two string namespaces give independent streams; long texts never coincide, but tiny problems
(e.g. "3 + 4 =") can also occur in training: their space is smaller than the training set.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from . import tokenizer as tk

DOMAINS = ("passkey", "assoc_recall", "copy", "arithmetic", "code", "prose")
_WORD_END = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NO_MERGE_AFTER_SPACE = set(" \n0123456789")


class Doc:
    """Text under construction: token pieces plus named spans as (name, char_start, char_end, tok_start, tok_end)."""

    def __init__(self, label: str):
        self.label = label
        self.pieces: list[str] = []
        self.n_chars = 0
        self.spans: list[tuple[str, int, int, int, int]] = []

    def add_pieces(self, pieces: list[str], name: str | None = None) -> None:
        if not pieces:
            return
        if not self.pieces and pieces[0][0] == " ":  # texts start without a space
            pieces = pieces[1:] if pieces[0] == " " else [pieces[0][1:], *pieces[1:]]
        elif self.pieces:
            prev, first = self.pieces[-1], pieces[0][0]
            if (prev[-1] in _WORD_END and first in _WORD_END) or (prev == " " and first not in _NO_MERGE_AFTER_SPACE):
                raise ValueError(f"pieces {prev!r} + {pieces[0]!r} would merge into one token")
        start_char, start_tok = self.n_chars, len(self.pieces)
        self.pieces.extend(pieces)
        self.n_chars += sum(map(len, pieces))
        if name is not None:
            self.spans.append((name, start_char, self.n_chars, start_tok, len(self.pieces)))

    def add(self, text: str, name: str | None = None) -> None:
        self.add_pieces(tk.split_pieces(text), name)

    def add_number(self, value: int, name: str | None = None) -> None:
        """A space piece, then the digits (the span covers the digits only)."""
        self.add_pieces([" "])
        self.add_pieces(list(str(value)), name)

    def mark(self) -> tuple[int, int]:
        """(chars, tokens) so far: pass to close_span to name everything added since."""
        return self.n_chars, len(self.pieces)

    def close_span(self, name: str, mark: tuple[int, int]) -> None:
        self.spans.append((name, mark[0], self.n_chars, mark[1], len(self.pieces)))

    def __len__(self) -> int:
        return len(self.pieces)


# ---------------------------------------------------------------- prose (also the filler of long tasks)
def _noun_phrase(rng: random.Random) -> list[str]:
    phrase = [" " + rng.choice(tk.DETERMINERS)]
    if rng.random() < 0.5:
        phrase.append(" " + rng.choice(tk.ADJECTIVES))
    phrase.append(" " + rng.choice(tk.NOUNS))
    return phrase


def _clause(rng: random.Random) -> list[str]:
    subject = [" " + rng.choice(tk.PRONOUNS[:3])] if rng.random() < 0.2 else _noun_phrase(rng)
    if rng.random() < 0.6:
        words = subject + [" " + rng.choice(tk.TRANSITIVE_VERBS)] + _noun_phrase(rng)
    else:
        words = subject + [" " + rng.choice(tk.INTRANSITIVE_VERBS)]
    if rng.random() < 0.4:
        words += [" " + rng.choice(tk.PREPOSITIONS)] + _noun_phrase(rng)
    if rng.random() < 0.25:
        words.append(" " + rng.choice(tk.ADVERBS))
    return words


def prose_sentence(rng: random.Random) -> list[str]:
    """One sentence as pieces, e.g. [" the", " old", " farmer", " walks", " slowly", " ."]."""
    words = _clause(rng)
    if rng.random() < 0.3:
        words += ([" ,"] if rng.random() < 0.5 else []) + [" " + rng.choice(tk.CONJUNCTIONS)] + _clause(rng)
    return words + [" ."]


def filler_sentences(rng: random.Random, n_tokens: int) -> list[list[str]]:
    """Prose sentences totalling exactly n_tokens pieces (the last one cut short if needed)."""
    sentences, total = [], 0
    while total < n_tokens:
        sentence = prose_sentence(rng)[: n_tokens - total]
        sentences.append(sentence)
        total += len(sentence)
    return sentences


def gen_prose(rng: random.Random, n_tokens: int = 256) -> Doc:
    doc = Doc("prose")
    for sentence in filler_sentences(rng, n_tokens):
        doc.add_pieces(sentence)
    return doc


# ---------------------------------------------------------------- retrieval tasks
def _insert_points(rng: random.Random, sentences: list, n: int, depths: list[float] | None = None) -> list[int]:
    """Sentence indices (sorted) before which n items are planted, at given or uniform depths in [0, 1]."""
    depths = sorted(depths if depths is not None else [rng.random() for _ in range(n)])
    return [round(d * len(sentences)) for d in depths]


def gen_passkey(rng: random.Random, n_tokens: int = 1024, depth: float | None = None) -> Doc:
    """A 5-digit pass key planted at `depth` (fraction of the filler before it) in exactly n_tokens tokens."""
    key = rng.randint(10000, 99999)
    needle_len = len(tk.split_pieces(" the pass key is 12345 . remember it ."))
    question_len = len(tk.split_pieces(" what is the pass key ? the pass key is 12345 ."))
    n_filler = n_tokens - needle_len - question_len
    if n_filler < 0:
        raise ValueError(f"passkey needs at least {needle_len + question_len} tokens, asked for {n_tokens}")
    sentences = filler_sentences(rng, n_filler)
    cut = _insert_points(rng, sentences, 1, None if depth is None else [depth])[0]
    doc = Doc("passkey")
    for sentence in sentences[:cut]:
        doc.add_pieces(sentence)
    doc.add(" the pass key is")
    doc.add_number(key, "needle")
    doc.add(" . remember it .")
    for sentence in sentences[cut:]:
        doc.add_pieces(sentence)
    doc.add(" what is the")
    doc.add(" pass key", "query")
    doc.add(" ? the pass key is")
    doc.add_number(key, "answer")
    doc.add(" .")
    return doc


def pair_tokens(n_pairs: int, n_queries: int) -> int:
    """Tokens an associative-recall text takes without filler: n_pairs facts, the recall cue and n_queries queries."""
    return 7 * n_pairs + 2 + 7 * n_queries  # " k", " =", " ", 3 digits, " ;" per pair/query; " recall", " :"


def gen_assoc_recall(rng: random.Random, n_pairs: int = 8, n_queries: int = 1, n_tokens: int | None = None) -> Doc:
    """n_pairs "key = value ;" facts (3-digit values), then " recall :" and n_queries queries of distinct keys.

    With n_tokens, the pairs are scattered through prose filler so the text has exactly n_tokens tokens.
    """
    keys = rng.sample(tk.KEY_WORDS, n_pairs)
    values = [rng.randint(100, 999) for _ in keys]
    queried = rng.sample(range(n_pairs), min(n_queries, n_pairs))
    n_filler = 0 if n_tokens is None else n_tokens - pair_tokens(n_pairs, len(queried))
    if n_filler < 0:
        raise ValueError(f"{n_pairs} pairs, {len(queried)} queries need {n_tokens - n_filler} tokens, got {n_tokens}")
    sentences = filler_sentences(rng, n_filler)
    points = _insert_points(rng, sentences, n_pairs)
    doc, next_sentence = Doc("assoc_recall"), 0
    for i, (key, value, point) in enumerate(zip(keys, values, points)):
        for sentence in sentences[next_sentence:point]:
            doc.add_pieces(sentence)
        next_sentence = max(next_sentence, point)
        mark = doc.mark()
        doc.add(" " + key + " =")
        doc.add_number(value, "needle" if i == queried[-1] else None)
        doc.close_span(f"pair_{i}", mark)
        doc.add(" ;")
    for sentence in sentences[next_sentence:]:
        doc.add_pieces(sentence)
    doc.add(" recall :")
    for j, i in enumerate(queried):
        doc.add(" " + keys[i], "query" if j == len(queried) - 1 else None)
        doc.add(" =")
        doc.add_number(values[i], "answer")
        doc.add(" ;")  # the same after every query: the token after an answer is predictable
    return doc


def gen_copy(rng: random.Random, n_items: int = 16) -> Doc:
    """"sequence : <items> . copy : <items> ." with items drawn from letters and key words."""
    items = [rng.choice(tk.LETTERS) if rng.random() < 0.5 else rng.choice(tk.KEY_WORDS) for _ in range(n_items)]
    pieces = [" " + item for item in items]
    doc = Doc("copy")
    doc.add("sequence :")
    doc.add_pieces(pieces, "source")
    doc.add(" . copy :")
    doc.add_pieces(pieces, "answer")
    doc.add(" .")
    return doc


def gen_arithmetic(rng: random.Random, n_problems: int = 3, ops: str = "+-*") -> Doc:
    """Solved problems "a op b = c" separated by " ;": a+b, a-b (a >= b) with a, b < 1000; a*b with a < 100, b < 10."""
    doc = Doc("arithmetic")
    for i in range(n_problems):
        op = rng.choice(ops)
        if op == "*":
            a, b = rng.randint(2, 99), rng.randint(2, 9)
        else:
            a, b = rng.randint(0, 999), rng.randint(0, 999)
            if op == "-" and b > a:
                a, b = b, a
        doc.add_number(a)
        doc.add(" " + op)
        doc.add_number(b)
        doc.add(" =")
        doc.add_number({"+": a + b, "-": a - b, "*": a * b}[op], "answer")
        doc.add(" ;")
    return doc


def _code_function(rng: random.Random) -> str:
    name, (xs, limit, acc, x) = rng.choice(tk.CODE_FUNCTIONS), rng.sample(tk.CODE_VARIABLES, 4)
    cmp = rng.choice((">", "<", "==", "!="))
    lines = [f"\ndef {name}({xs}, {limit}):"]
    if rng.random() < 0.5:
        lines += [f"\n  {acc} = 0", f"\n  for {x} in {xs}:", f"\n    if {x} {cmp} {limit}:",
                  f"\n      {acc} = {acc} + {x}"]
    else:
        lines += [f"\n  {acc} = []", f"\n  for {x} in range(len({xs})):", f"\n    if not {xs}[{x}] {cmp} {limit}:",
                  f"\n      {acc}.append({xs}[{x}] * {limit})", "\n    else:", "\n      continue"]
    return "".join(lines) + f"\n  return {acc}\n"


def gen_code(rng: random.Random, n_tokens: int = 256) -> Doc:
    """Functions, six "name = 42" constants and filler assignments (n_tokens tokens, within a line),
    then "assert name == 42" for one constant."""
    names = rng.sample(tk.CODE_CONSTANTS, 6)
    values = [rng.randint(0, 999) for _ in names]
    target = rng.randrange(len(names))
    doc, placed = Doc("code"), 0
    doc.add("import data")
    while True:
        tail = 6 * (len(names) - placed) + 8  # the constants still to place and the assert line
        function = tk.split_pieces(_code_function(rng))
        if placed < len(names) and (rng.random() < 0.4 or len(doc) + len(function) + tail > n_tokens):
            doc.add(f"\n{names[placed]} =")
            doc.add_number(values[placed], "needle" if placed == target else None)
            placed += 1
        elif len(doc) + len(function) + tail <= n_tokens:
            doc.add_pieces(function)
        elif len(doc) + 6 + tail <= n_tokens:  # top up with assignments to local-style names
            doc.add(f"\n{rng.choice(tk.CODE_VARIABLES)} =")
            doc.add_number(rng.randint(0, 99))
        else:
            break
    doc.add("\nassert")
    doc.add(" " + names[target], "query")
    doc.add(" ==")
    doc.add_number(values[target], "answer")
    doc.add("\n")
    return doc


GENERATORS = {"passkey": gen_passkey, "assoc_recall": gen_assoc_recall, "copy": gen_copy,
              "arithmetic": gen_arithmetic, "code": gen_code, "prose": gen_prose}


def _unique_span_names(spans: list[dict]) -> list[dict]:
    """Span names are keys downstream (span mass per name): a name used n > 1 times keeps its plain
    form on its last span and becomes name_1 .. name_{n-1} on the earlier ones (text order)."""
    counts: dict[str, int] = {}
    for span in spans:
        counts[span["name"]] = counts.get(span["name"], 0) + 1
    seen: dict[str, int] = {}
    renamed = []
    for span in spans:
        name = span["name"]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] < counts[name]:
            name = f"{name}_{seen[name]}"
        renamed.append({**span, "name": name})
    return renamed


def make_record(doc: Doc, record_id: str) -> dict:
    """The JSON-ready record of a Doc (see the module docstring)."""
    text = "".join(doc.pieces)
    spans = [{"name": name, "start": c0, "end": c1} for name, c0, c1, _, _ in doc.spans]
    answers = [s for s in spans if s["name"] == "answer"]
    if answers:
        answers[-1]["query"] = True  # the record's answer: analysed as attention query rows
    spans = _unique_span_names(spans)
    answer = text[answers[-1]["start"]: answers[-1]["end"]] if answers else None
    prompt = text[: answers[-1]["start"]] if answers else text
    return {"id": record_id, "text": text, "label": doc.label, "spans": spans, "answer": answer,
            "prompt": prompt, "n_tokens": len(doc.pieces)}


def generate(task: str, seed: int | str, **params) -> dict:
    """One record of `task`, a pure function of (task, seed, params) (namespace "nano-record", for tests)."""
    return make_record(GENERATORS[task](random.Random(f"nano-record:{seed}"), **params), f"{task}-{seed}")


# ---------------------------------------------------------------- held-out probe suites
HELDOUT_SUITES: dict[str, tuple[str, dict]] = {
    **{f"passkey_{n}": ("passkey", {"n_tokens": n}) for n in (1024, 2048, 4096, 8192)},
    "assoc_recall_8pairs_512": ("assoc_recall", {"n_pairs": 8, "n_tokens": 512}),
    "assoc_recall_8pairs_2048": ("assoc_recall", {"n_pairs": 8, "n_tokens": 2048}),
    "assoc_recall_16pairs_compact": ("assoc_recall", {"n_pairs": 16}),
    **{f"copy_{n}": ("copy", {"n_items": n}) for n in (8, 16, 32)},
    "arithmetic_add": ("arithmetic", {"n_problems": 3, "ops": "+"}),
    "arithmetic_mul": ("arithmetic", {"n_problems": 3, "ops": "*"}),
    "code_256": ("code", {"n_tokens": 256}),
    "prose_512": ("prose", {"n_tokens": 512}),
}


def heldout_records(suite: str, seed: int, n: int) -> list[dict]:
    """n held-out records of a suite, from the held-out seed space (never the training one)."""
    task, params = HELDOUT_SUITES[suite]
    return [make_record(GENERATORS[task](random.Random(f"nano-heldout:{seed}:{suite}:{i}"), **params),
                        f"{suite}-s{seed}-{i:04d}") for i in range(n)]


def write_probe_prompts(out_dir: str | Path, seed: int, n_per_task: int) -> list[Path]:
    """Write <out_dir>/<suite>.jsonl for every held-out suite (one record per line); returns the paths.

    Each file is written to a temporary name and renamed, so a crash never leaves a half file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suite in HELDOUT_SUITES:
        path, tmp = out_dir / f"{suite}.jsonl", out_dir / f".{suite}.jsonl.tmp"
        with open(tmp, "w") as f:
            for record in heldout_records(suite, seed, n_per_task):
                f.write(json.dumps(record) + "\n")
        os.replace(tmp, path)
        paths.append(path)
    return paths


# Generator parameters of each domain's held-out routing stream (`domain_stream`): the nano's routing evaluation
# (nano/evaluate.py in the repository) and the routing-specialisation and pruning probes draw the same texts.
ROUTING_PARAMS = {"passkey": {"n_tokens": 512}, "assoc_recall": {"n_pairs": 8, "n_tokens": 512},
                  "copy": {"n_items": 32}, "arithmetic": {"n_problems": 12}, "code": {"n_tokens": 512},
                  "prose": {"n_tokens": 512}}


def domain_stream(domain: str, seed: int, n_tokens: int) -> list[int]:
    """n_tokens ids of held-out `domain` records packed as <bos> record <eos> ... (record i from
    random.Random(f"nano-heldout:{seed}:routing-{domain}:{i}"), parameters `ROUTING_PARAMS[domain]`)."""
    vocab, ids, i = tk.build_vocab(), [], 0
    while len(ids) < n_tokens:
        rng = random.Random(f"nano-heldout:{seed}:routing-{domain}:{i}")
        doc = GENERATORS[domain](rng, **ROUTING_PARAMS[domain])
        ids += [tk.BOS_ID, *(vocab[p] for p in doc.pieces), tk.EOS_ID]
        i += 1
    return ids[:n_tokens]


def encode_for_exact_match(tokenizer, record: dict) -> tuple[list[int], list[int]]:
    """(prompt ids with <bos>, gold continuation ids: the answer's tokens plus the next token of the text).

    A greedy continuation is exact when it equals the gold ids (the answer, then the text's " ." / " ;" / newline);
    gold is padded with <eos> where the text ends right after the answer."""
    prompt_ids = tokenizer(record["prompt"]).input_ids
    full_ids = tokenizer(record["text"]).input_ids
    n_answer = len(tokenizer(record["answer"], add_special_tokens=False).input_ids)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(f"{record['id']}: the prompt does not tokenize as a prefix of the text")
    gold = full_ids[len(prompt_ids): len(prompt_ids) + n_answer + 1]
    return prompt_ids, gold + [tk.EOS_ID] * (n_answer + 1 - len(gold))


