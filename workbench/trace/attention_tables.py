"""Attention-recall captures -> Arrow tables `spans`, `attention`, `attention_gate`, `retrieval` (one sequence at a
time; column meanings in schema.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pyarrow as pa

from ..spans import TokenSpan
from .schema import table_schema
from .tables import _list_column, seq_column

if TYPE_CHECKING:  # records are built by capture/; the trace layer only reads them
    from ..capture.records import AttentionCapture


def spans_table(seq_id: str, spans: Sequence[TokenSpan]) -> pa.Table:
    return pa.table(
        {
            "seq_id": [seq_id] * len(spans),
            "span": [s.name for s in spans],
            "start_char": np.asarray([s.start_char for s in spans], dtype=np.int32),
            "end_char": np.asarray([s.end_char for s in spans], dtype=np.int32),
            "start_token": np.asarray([s.start_token for s in spans], dtype=np.int32),
            "end_token": np.asarray([s.end_token for s in spans], dtype=np.int32),
            "query": pa.array([s.query for s in spans], type=pa.bool_()),
        },
        schema=table_schema("spans"),
    )


def _span_mass_column(span_mass: dict[str, np.ndarray], rows: int) -> pa.Array:
    """name -> [rows] masses -> list<struct<span, mass>> (schema SPAN_MASS_TYPE) with every name in every row."""
    names = list(span_mass)
    keys = pa.array(names * rows, type=pa.string())
    values = np.stack([span_mass[n] for n in names], axis=-1).reshape(-1) if names else np.zeros(0)  # row-major
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * len(names))
    entries = pa.StructArray.from_arrays([keys, pa.array(values.astype(np.float32), type=pa.float32())],
                                         names=["span", "mass"])
    return pa.ListArray.from_arrays(offsets, entries)


def attention_tables(seq_id: str, capture: AttentionCapture, batch: int = 0,
                     positions: slice | None = None) -> dict[str, pa.Table]:
    """Batch row `batch` of an AttentionCapture: {"attention": rows ordered (layer, position, head),
    "attention_gate": rows ordered (layer, position)} (no gate table when the model has no output gate).
    `positions` picks the token range [start, stop) of this sequence among the capture's gate tokens."""
    num_layers = len(capture.layers)
    _, _, num_rows, num_heads = capture.entropy.shape
    n = num_layers * num_rows * num_heads
    layer = np.repeat(np.asarray(capture.layers, dtype=np.int16), num_rows * num_heads)
    position = np.tile(np.repeat(capture.query_positions.numpy().astype(np.int32), num_heads), num_layers)
    head = np.tile(np.arange(num_heads, dtype=np.int16), num_layers * num_rows)

    def flat(tensor):  # [L, B, Q, H, ...] -> [L * Q * H, ...] numpy of this batch row
        part = tensor[:, batch]
        return part.reshape(n, *part.shape[3:]).numpy()

    schema = table_schema("attention")
    tables = {
        "attention": pa.table(
            {
                "seq_id": seq_column(seq_id, n),
                "position": position,
                "layer": layer,
                "head": head,
                "span_mass": _span_mass_column({k: flat(v) for k, v in capture.span_mass.items()}, n),
                "topk_positions": _list_column(flat(capture.topk_pos).astype(np.int32),
                                               schema.field("topk_positions").type),
                "topk_weights": _list_column(flat(capture.topk_weight).astype(np.float32),
                                             schema.field("topk_weights").type),
                "entropy": flat(capture.entropy).astype(np.float32),
                "sink_mass": flat(capture.sink_mass).astype(np.float32),
                "mean_distance": flat(capture.mean_distance).astype(np.float32),
            },
            schema=schema,
        )
    }
    if capture.gate_mean is not None:
        tables["attention_gate"] = gate_table(seq_id, capture, batch, positions)
    return tables


def gate_table(seq_id: str, capture: AttentionCapture, batch: int = 0, positions: slice | None = None) -> pa.Table:
    positions = positions or slice(0, capture.gate_mean.shape[2])
    mean = capture.gate_mean[:, batch, positions].numpy()  # [L, T, H]
    low = capture.gate_low_fraction[:, batch, positions].numpy()
    num_layers, num_tokens, num_heads = mean.shape
    schema = table_schema("attention_gate")
    return pa.table(
        {
            "seq_id": seq_column(seq_id, num_layers * num_tokens),
            "position": np.tile(np.arange(num_tokens, dtype=np.int32), num_layers),
            "layer": np.repeat(np.asarray(capture.layers, dtype=np.int16), num_tokens),
            "gate_mean": mean.mean(-1).reshape(-1).astype(np.float16),
            "gate_low_fraction": low.mean(-1).reshape(-1).astype(np.float16),
            "head_gate_mean": _list_column(mean.reshape(-1, num_heads).astype(np.float16),
                                           schema.field("head_gate_mean").type),
            "head_gate_low_fraction": _list_column(low.reshape(-1, num_heads).astype(np.float16),
                                                   schema.field("head_gate_low_fraction").type),
        },
        schema=schema,
    )


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
