"""Routing records -> the `routing` and `router_logits` tables (one sequence, or every row of a batch at once)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from ...trace.schema import table_schema
from ...trace.tables import list_column, repeated_strings
from .record import RoutingCapture


def routing_tables(seq_id: str, capture: RoutingCapture, rows: slice) -> dict[str, pa.Table]:
    """Rows `rows` of the flattened tokens (one sequence) of a RoutingCapture, ordered (layer, position).
    Returns {"routing": ...} plus {"router_logits": ...} when logits were captured."""
    return batch_routing_tables([(seq_id, rows)], capture)


def batch_routing_tables(sequences: list[tuple[str, slice]], capture: RoutingCapture) -> dict[str, pa.Table]:
    """The routing tables of several sequences of one capture at once (a right-padded batch: one gather per column,
    no Python loop over rows): (seq_id, rows of the flattened token axis) per sequence, each sequence's rows ordered
    (layer, position) and the sequences in the given order, exactly as `routing_tables` of each, concatenated."""
    layers = np.asarray(capture.layers, dtype=np.int16)
    num_layers, total = len(layers), capture.topk_ids.shape[1]
    lengths = np.array([rows.stop - rows.start for _, rows in sequences], dtype=np.int64)
    # row r of the table reads flat index layer * total + token of the [L * total] flattened capture
    index = np.concatenate([(np.arange(num_layers)[:, None] * total + np.arange(rows.start, rows.stop)).reshape(-1)
                            for _, rows in sequences])
    position_col = np.concatenate([np.tile(np.arange(n, dtype=np.int32), num_layers) for n in lengths])
    layer_col = np.concatenate([np.repeat(layers, n) for n in lengths])
    seq_col = repeated_strings([seq_id for seq_id, _ in sequences], lengths * num_layers)

    gather = torch.from_numpy(index)

    def flat(tensor):  # [L, total, ...] -> [rows, ...] numpy, in table order
        part = tensor.reshape(num_layers * total, *tensor.shape[2:])[gather]
        return (part.float() if part.dtype == torch.bfloat16 else part).numpy()

    schema = table_schema("routing")
    shared = flat(capture.shared_gate).astype(np.float16)
    routing = pa.table(
        {
            "seq_id": seq_col,
            "position": position_col,
            "layer": layer_col,
            "topk_ids": list_column(flat(capture.topk_ids).astype(np.uint16), schema.field("topk_ids").type),
            "topk_weights": list_column(
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
        logits = flat(capture.router_logits).astype(np.float16)
        tables["router_logits"] = pa.table(
            {
                "seq_id": seq_col,
                "position": position_col,
                "layer": layer_col,
                "router_logits": list_column(logits, logits_schema.field("router_logits").type),
            },
            schema=logits_schema,
        )
    return tables
