"""Activation patching on clean / corrupted passkey pairs (an INTERVENTION: interventions/patching.py).

A pair is one held-out passkey prompt (the nano's suite) cut before its answer, twice: clean with key K, corrupted
with another key K' of the same length and a different first digit (the same filler, depth and question). The answer
is K's first digit, the foil K''s; the metric is the logit difference at the last position and its normalised
recovery. Sites: every layer's mixer write, every attention layer's heads (optional), every DeltaNet layer's
recurrent state; position ranges: the needle span, the tokens between it and the question, the question, the last
token (state sites: after the last token of each range).
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..adapters import FULL_ATTENTION, LINEAR_ATTENTION
from ..capture import CaptureSettings
from ..capture.attribution.recorder import _head_split
from ..interventions.patching import Site, patching_sweep
from ..loading import LoadedModel
from ..nano.data import gen_passkey
from ..trace.schema import table_schema
from ..tracing import write_probe_run
from .long_context import heldout_rng, model_device, prompt_from_doc

INTERVENTION = "activation_patching"


def passkey_pair(tokenizer, length: int, seed: int, index: int) -> dict:
    """One clean / corrupted pair: token ids [1, T] each (cut before the answer), answer and foil ids, and the
    named ranges (needle, between, question, last) as (start, stop)."""
    doc = gen_passkey(heldout_rng("patching", seed, index), n_tokens=length)
    clean = prompt_from_doc(tokenizer, doc, f"pair{index}")
    needle, answer = clean.span("needle"), clean.span("answer")
    key = [clean.ids[t] for t in range(needle.start_token, needle.end_token)]
    digits = {tokenizer.convert_tokens_to_ids(str(d)): d for d in range(10)}
    rng = random.Random(f"patching-foil:{seed}:{index}")
    first = digits[key[0]]
    other = [tokenizer.convert_tokens_to_ids(str(rng.choice([d for d in range(1, 10) if d != first])))]
    other += [tokenizer.convert_tokens_to_ids(str(rng.randrange(10))) for _ in key[1:]]
    cut = answer.start_token  # the prompt ends right before the answer's first digit
    corrupted = list(clean.ids[:cut])
    corrupted[needle.start_token:needle.end_token] = other
    question = clean.span("query")
    ranges = {"needle": (needle.start_token, needle.end_token), "between": (needle.end_token, question.start_token),
              "question": (question.start_token, cut - 1), "last": (cut - 1, cut)}
    return {"id": clean.prompt_id, "clean": torch.tensor([clean.ids[:cut]]), "corrupted": torch.tensor([corrupted]),
            "answer": key[0], "foil": other[0], "ranges": ranges}


def probe_sites(model, adapter, heads: bool = True) -> list[Site]:
    kinds = adapter.layer_kinds(model.config)
    mixers = {**adapter.layers_of_kind(model, FULL_ATTENTION), **adapter.layers_of_kind(model, LINEAR_ATTENTION)}
    sites = [Site("mixer", layer) for layer in sorted(mixers)]
    if heads:
        for layer in sorted(mixers):
            split = _head_split(mixers[layer]) if kinds[layer] == FULL_ATTENTION else None
            sites += [Site("head", layer, h) for h in range(split[1])] if split else []
    sites += [Site("state", layer) for layer, kind in enumerate(kinds) if kind == LINEAR_ATTENTION]
    return sites


@torch.inference_mode()
def run_patching(loaded: LoadedModel, out: str | Path, pairs: int = 4, length: int = 256, seed: int = 0,
                 heads: bool = True, progress: bool = True) -> tuple[str, pa.Table, dict]:
    """Sweep every site over the pair's ranges for `pairs` passkey pairs; appends one run with table `patching`.
    Returns (run id, table, forwards run in total)."""
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    model, adapter = loaded.model, loaded.adapter
    device = model_device(model)
    sites = probe_sites(model, adapter, heads)
    started = datetime.now(timezone.utc)
    rows, records, total = [], [], {}
    for index in tqdm(range(pairs), desc="patching", unit="pair", disable=not progress):
        pair = passkey_pair(loaded.tokenizer, length, seed, index)
        names = list(pair["ranges"])
        found, forwards = patching_sweep(model, adapter, pair["clean"].to(device), pair["corrupted"].to(device),
                                         pair["answer"], pair["foil"], sites, [pair["ranges"][n] for n in names])
        by_range = {pair["ranges"][n]: n for n in names}
        for row in found:
            rows.append({"intervention": INTERVENTION, "pair": pair["id"], **row,
                         "range": by_range[(row["position_start"], row["position_end"])],
                         "index": None if row["index"] < 0 else row["index"], "context_length": pair["clean"].shape[1]})
        total = {k: total.get(k, 0) + v for k, v in forwards.items()}
        records.append({"id": pair["id"], "num_tokens": int(pair["clean"].shape[1]), "label": "passkey"})
    table = pa.Table.from_pylist(rows, schema=table_schema("patching"))
    run = write_probe_run(loaded, out, [("patching", table)], CaptureSettings(routing=False), records, started,
                          probe={"name": "patching", "intervention": True, "pairs": pairs, "length": length,
                                 "seed": seed, "heads": heads, "forwards": total, "prompt_space": "nano-heldout"})
    return run.run_id, table, total
