"""Captured tensors -> Arrow tables in the trace schema (rows of one sequence at a time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .schema import table_schema

if TYPE_CHECKING:  # records are built by capture/; the trace layer only reads them
    from ..capture.records import RoutingCapture


def _list_column(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """[rows, k] numpy -> list<...> column with k entries per row."""
    rows, width = values.shape
    flat = pa.array(values.reshape(-1), type=arrow_type.value_type)
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, type=arrow_type)


def tokens_table(seq_id: str, token_ids: list[int], tokens: list[str], label: str | None) -> pa.Table:
    n = len(token_ids)
    return pa.table(
        {
            "seq_id": [seq_id] * n,
            "position": np.arange(n, dtype=np.int32),
            "token_id": np.asarray(token_ids, dtype=np.int32),
            "token": tokens,
            "label": pa.array([label] * n, type=pa.string()),
        },
        schema=table_schema("tokens"),
    )


def routing_tables(seq_id: str, capture: RoutingCapture, rows: slice) -> dict[str, pa.Table]:
    """Rows `rows` of the flattened tokens (one sequence) of a RoutingCapture, ordered (layer, position).
    Returns {"routing": ...} plus {"router_logits": ...} when logits were captured."""
    num_layers = len(capture.layers)
    positions = np.arange(rows.stop - rows.start, dtype=np.int32)
    n = len(positions)
    layer_col = np.repeat(np.asarray(capture.layers, dtype=np.int16), n)
    position_col = np.tile(positions, num_layers)
    seq_col = pa.array([seq_id] * (num_layers * n), type=pa.string())

    def flat(tensor):  # [L, N, ...] -> [L * n, ...] numpy for this sequence
        part = tensor[:, rows]
        return part.reshape(num_layers * n, *part.shape[2:]).numpy()

    schema = table_schema("routing")
    shared = flat(capture.shared_gate).astype(np.float16)
    routing = pa.table(
        {
            "seq_id": seq_col,
            "position": position_col,
            "layer": layer_col,
            "topk_ids": _list_column(flat(capture.topk_ids).astype(np.uint16), schema.field("topk_ids").type),
            "topk_weights": _list_column(
                flat(capture.topk_weights).astype(np.float16), schema.field("topk_weights").type
            ),
            "router_entropy": flat(capture.router_entropy).astype(np.float16),
            "topk_mass": flat(capture.topk_mass).astype(np.float16),
            "topk_margin": flat(capture.topk_margin).astype(np.float16),
            "shared_gate": pa.array(shared, mask=np.isnan(shared), type=pa.float16()),
        },
        schema=schema,
    )
    tables = {"routing": routing}
    if capture.router_logits is not None:
        logits_schema = table_schema("router_logits")
        logits = flat(capture.router_logits.float()).astype(np.float16)
        tables["router_logits"] = pa.table(
            {
                "seq_id": seq_col,
                "position": position_col,
                "layer": layer_col,
                "router_logits": _list_column(logits, logits_schema.field("router_logits").type),
            },
            schema=logits_schema,
        )
    return tables
