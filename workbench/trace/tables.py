"""Captured tensors -> Arrow tables in the trace schema (one sequence, or the rows of a batch at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from .schema import table_schema

if TYPE_CHECKING:  # records are built by capture/; the trace layer only reads them
    from ..capture.records import RoutingCapture


def seq_column(seq_id: str, n: int) -> pa.Array:
    """A string column of `n` copies of `seq_id` (built in Arrow: no Python list of n strings)."""
    return pa.repeat(pa.scalar(seq_id, pa.string()), n)


def repeated_strings(values: list[str | None], counts) -> pa.Array:
    """values[0] `counts[0]` times, then values[1] `counts[1]` times, ...: a string column (None: nulls), one
    `pa.repeat` per value (a `take` of the values by a row index costs 15x more at 200K rows)."""
    parts = [pa.repeat(pa.scalar(value, pa.string()), int(n)) for value, n in zip(values, counts)]
    return pa.concat_arrays(parts) if parts else pa.array([], type=pa.string())


def _list_column(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """[rows, k] numpy -> list<...> column with k entries per row."""
    rows, width = values.shape
    flat = pa.array(values.reshape(-1), type=arrow_type.value_type)
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, type=arrow_type)


def tokens_table(seq_ids: list[str], token_ids: list, labels: list[str | None], vocab: pa.Array) -> pa.Table:
    """The tokens rows of one or more sequences, concatenated in order (seq_id, position, token_id, token, label);
    `vocab` holds the token string of every id (tracing.token_strings: the tokenizer's convert_ids_to_tokens of
    0..len-1), so the token strings are one `take`, not a Python lookup per token."""
    lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
    ids = np.concatenate([np.asarray(ids) for ids in token_ids]).astype(np.int32)  # arrays (tracing) or lists
    return pa.table(
        {
            "seq_id": repeated_strings(seq_ids, lengths),
            "position": np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
            "token_id": ids,
            "token": pc.take(vocab, pa.array(ids)),
            "label": repeated_strings(labels, lengths),
        },
        schema=table_schema("tokens"),
    )


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
        logits = flat(capture.router_logits).astype(np.float16)
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
