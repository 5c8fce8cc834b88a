"""Attention-recall captures -> Arrow tables `spans`, `attention`, `attention_gate`, `retrieval` (one sequence, or
the rows of a batch at once; column meanings in schema.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import torch

from ...trace.schema import table_schema
from ...trace.tables import list_column, repeated_strings
from .record import AttentionCapture


def _span_mass_column(span_mass: dict[str, np.ndarray], rows: int) -> pa.Array:
    """name -> [rows] masses -> list<struct<span, mass>> (schema SPAN_MASS_TYPE) with every name in every row."""
    names = list(span_mass)
    keys = pa.array(names * rows, type=pa.string())
    values = np.stack([span_mass[n] for n in names], axis=-1).reshape(-1) if names else np.zeros(0)  # row-major
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * len(names))
    entries = pa.StructArray.from_arrays([keys, pa.array(values.astype(np.float32), type=pa.float32())],
                                         names=["span", "mass"])
    return pa.ListArray.from_arrays(offsets, entries)


def attention_tables(seq_id: str, capture: AttentionCapture) -> dict[str, pa.Table]:
    """Batch row 0 of an AttentionCapture (one sequence): {"attention": rows ordered (layer, position, head),
    "attention_gate": rows ordered (layer, position)} (no gate table when the model has no output gate)."""
    return batch_attention_tables([seq_id], [batch_row(capture, 0)])


def batch_attention_tables(seq_ids: list[str], captures: list[AttentionCapture]) -> dict[str, pa.Table]:
    """The tables of several sequences, one AttentionCapture each (B = 1; the rows of a right-padded batch), equal
    to `attention_tables` of each concatenated in order: runs of captures with the same layers, query rows, spans
    and gate tokens (a batch of equal-length prompts is one run) are stacked and built at once."""
    parts: dict[str, list[pa.Table]] = {}
    start = 0
    while start < len(captures):
        stop = start + 1
        while stop < len(captures) and _alike(captures[start], captures[stop]):
            stop += 1
        for name, table in _stacked_tables(seq_ids[start:stop], _stack(captures[start:stop])).items():
            parts.setdefault(name, []).append(table)
        start = stop
    return {name: tables[0] if len(tables) == 1 else pa.concat_tables(tables) for name, tables in parts.items()}


BATCH_FIELDS = ("topk_pos", "topk_weight", "entropy", "sink_mass", "mean_distance", "gate_mean", "gate_low_fraction")


def batch_row(capture: AttentionCapture, b: int) -> AttentionCapture:
    """Batch row b of a capture (every [L, B, ...] field cut to B = 1; views, no copy)."""
    def cut(t):
        return None if t is None else t[:, b:b + 1]

    return replace(capture, span_mass={n: cut(m) for n, m in capture.span_mass.items()},
                   **{name: cut(getattr(capture, name)) for name in BATCH_FIELDS})


def _alike(a: AttentionCapture, b: AttentionCapture) -> bool:
    """Whether two one-sequence captures stack into one [L, 2, ...] capture (same rows, spans and gate tokens)."""
    gate_shape = (lambda c: None if c.gate_mean is None else tuple(c.gate_mean.shape))
    return (a.layers == b.layers and list(a.span_mass) == list(b.span_mass) and gate_shape(a) == gate_shape(b)
            and torch.equal(a.query_positions, b.query_positions) and a.entropy.shape == b.entropy.shape)


def _stack(captures: list[AttentionCapture]) -> AttentionCapture:
    """Alike one-sequence captures -> one capture whose batch row b is captures[b]."""
    if len(captures) == 1:
        return captures[0]

    def cat(values):
        return None if values[0] is None else torch.cat(values, dim=1)

    first = captures[0]
    return replace(first, span_mass={n: cat([c.span_mass[n] for c in captures]) for n in first.span_mass},
                   **{name: cat([getattr(c, name) for c in captures]) for name in BATCH_FIELDS})


def _stacked_tables(seq_ids: list[str], capture: AttentionCapture) -> dict[str, pa.Table]:
    """Tables of every batch row b of `capture` (sequence seq_ids[b]), rows ordered (sequence, layer, position,
    head) and (sequence, layer, position)."""
    num_layers, num_seqs, num_rows, num_heads = capture.entropy.shape
    per_seq = num_layers * num_rows * num_heads
    n = num_seqs * per_seq
    layer = np.tile(np.repeat(np.asarray(capture.layers, dtype=np.int16), num_rows * num_heads), num_seqs)
    position = np.tile(np.repeat(capture.query_positions.numpy().astype(np.int32), num_heads), num_layers * num_seqs)
    head = np.tile(np.arange(num_heads, dtype=np.int16), num_layers * num_rows * num_seqs)

    def flat(tensor):  # [L, B, Q, H, ...] -> [B * L * Q * H, ...] numpy, sequence-major
        part = tensor.transpose(0, 1)
        return part.reshape(n, *part.shape[4:]).numpy()

    schema = table_schema("attention")
    tables = {
        "attention": pa.table(
            {
                "seq_id": repeated_strings(seq_ids, [per_seq] * num_seqs),
                "position": position,
                "layer": layer,
                "head": head,
                "span_mass": _span_mass_column({k: flat(v) for k, v in capture.span_mass.items()}, n),
                "topk_positions": list_column(flat(capture.topk_pos).astype(np.int32),
                                               schema.field("topk_positions").type),
                "topk_weights": list_column(flat(capture.topk_weight).astype(np.float32),
                                             schema.field("topk_weights").type),
                "entropy": flat(capture.entropy).astype(np.float32),
                "sink_mass": flat(capture.sink_mass).astype(np.float32),
                "mean_distance": flat(capture.mean_distance).astype(np.float32),
            },
            schema=schema,
        )
    }
    if capture.gate_mean is not None:
        tables["attention_gate"] = gate_table(seq_ids, capture)
    return tables


def gate_table(seq_ids: list[str], capture: AttentionCapture) -> pa.Table:
    """One row per (sequence = batch row, layer, token) of the capture's gate fields."""
    mean = capture.gate_mean.transpose(0, 1).numpy()  # [B, L, T, H]
    low = capture.gate_low_fraction.transpose(0, 1).numpy()
    num_seqs, num_layers, num_tokens, num_heads = mean.shape
    schema = table_schema("attention_gate")
    return pa.table(
        {
            "seq_id": repeated_strings(seq_ids, [num_layers * num_tokens] * num_seqs),
            "position": np.tile(np.arange(num_tokens, dtype=np.int32), num_layers * num_seqs),
            "layer": np.tile(np.repeat(np.asarray(capture.layers, dtype=np.int16), num_tokens), num_seqs),
            "gate_mean": mean.mean(-1).reshape(-1).astype(np.float16),
            "gate_low_fraction": low.mean(-1).reshape(-1).astype(np.float16),
            "head_gate_mean": list_column(mean.reshape(-1, num_heads).astype(np.float16),
                                           schema.field("head_gate_mean").type),
            "head_gate_low_fraction": list_column(low.reshape(-1, num_heads).astype(np.float16),
                                                   schema.field("head_gate_low_fraction").type),
        },
        schema=schema,
    )
