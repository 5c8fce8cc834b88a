"""The nano's training stream: packed rows of synthetic docs drawn from a task mix, with answer flags for the loss.
Part of the lab (nano/train.py reads it), not of the installed library; the docs themselves come from the public
synthetic-task module `workbench.nano.data`, which the probes use too. The training seed space
(`training_rng`) is disjoint from the held-out one (`workbench.nano.data.heldout_records`).
"""

from __future__ import annotations

import math
import random

from workbench.nano import tokenizer as tk
from workbench.nano.data import (Doc, gen_arithmetic, gen_assoc_recall, gen_code, gen_copy, gen_passkey, gen_prose,
                                 pair_tokens)

DEFAULT_MIX = {"passkey": 0.25, "assoc_recall": 0.25, "copy": 0.1, "arithmetic": 0.15, "code": 0.1, "prose": 0.15}


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    value = round(math.exp(rng.uniform(math.log(low), math.log(max(low, high)))))
    return min(max(value, low), max(low, high))


def _context_length(rng: random.Random, low: int, budget: int) -> int:
    """Half the draws fill most of the budget (long-range retrieval), half are log-uniform (short contexts)."""
    if rng.random() < 0.5:
        return rng.randint(max(low, budget // 2), max(low, budget))
    return _log_uniform(rng, low, budget)


def sample_training_doc(rng: random.Random, task: str, budget: int) -> Doc | None:
    """A training Doc of `task` with at most `budget` tokens (None if the task cannot fit)."""
    if task == "passkey":
        return gen_passkey(rng, _context_length(rng, 48, budget)) if budget >= 48 else None
    if task == "assoc_recall":
        n_pairs, n_queries = rng.randint(2, 16), rng.randint(1, 4)
        while pair_tokens(n_pairs, n_queries) > budget and n_pairs > 2:
            n_pairs -= 1
        compact = pair_tokens(n_pairs, min(n_queries, n_pairs))
        if compact > budget:
            return None
        n_tokens = None if rng.random() < 0.4 else _context_length(rng, compact, budget)
        return gen_assoc_recall(rng, n_pairs, n_queries, n_tokens)
    if task == "copy":
        n_items = min(rng.randint(4, 32), (budget - 8) // 2)
        return gen_copy(rng, n_items) if n_items >= 2 else None
    if task == "arithmetic":
        n_problems = min(rng.randint(1, 8), budget // 14)
        return gen_arithmetic(rng, n_problems) if n_problems >= 1 else None
    if task == "code":
        doc = gen_code(rng, rng.randint(64, 384)) if budget >= 128 else None
        return doc if doc is not None and len(doc) <= budget else None
    return gen_prose(rng, min(budget, rng.randint(32, 512)))


def training_row(rng: random.Random, vocab: dict[str, int], row_len: int, mix: dict[str, float] = DEFAULT_MIX):
    """One packed row: ([row_len] token ids, [row_len] 0/1 answer flags), docs as <bos> doc <eos>.

    The row is filled by docs drawn from `mix` until one does not fit; the tail is prose cut to length,
    so rows hold no padding. Flags mark the tokens of "answer" spans and the token right after each
    (" ;", " ." or a newline); the loss upweights predicting them.
    """
    tasks, weights = list(mix), list(mix.values())
    ids, flags = [], []
    while True:
        budget = row_len - len(ids) - 2
        doc = sample_training_doc(rng, rng.choices(tasks, weights)[0], budget) if budget >= 16 else None
        if doc is None or len(doc) > budget:
            break
        flag = [0] * len(doc)
        for name, _, _, t0, t1 in doc.spans:
            if name == "answer":  # the answer and the token after it (when to stop: what exact match checks)
                stop = min(t1 + 1, len(doc))
                flag[t0:stop] = [1] * (stop - t0)
        ids += [tk.BOS_ID, *(vocab[p] for p in doc.pieces), tk.EOS_ID]
        flags += [0, *flag, 0]
    tail = row_len - len(ids)
    if tail > 0:
        ids += [tk.BOS_ID, *(vocab[p] for p in gen_prose(rng, tail - 1).pieces)]
        flags += [0] * tail
    return ids, flags


def training_batch(rng: random.Random, vocab: dict[str, int], n_rows: int, row_len: int,
                   mix: dict[str, float] = DEFAULT_MIX):
    """Lists of n_rows rows of row_len ids and answer flags (see `training_row`)."""
    rows = [training_row(rng, vocab, row_len, mix) for _ in range(n_rows)]
    return [r[0] for r in rows], [r[1] for r in rows]


def training_rng(seed: int, stream: int) -> random.Random:
    """The training seed space: one generator per (seed, stream), disjoint from the held-out namespace."""
    return random.Random(f"nano-train:{seed}:{stream}")
