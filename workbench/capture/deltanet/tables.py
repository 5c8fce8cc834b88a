"""DeltaNetCapture -> Arrow tables in the trace schema (`deltanet`, `deltanet_heads`, `deltanet_head_summary`,
`state_recall`, `state_snapshots`, `deltanet_contribution`), the rows of one sequence at a time.

Size of the default `deltanet` table before compression: `deltanet_row_bytes()` (28) bytes per token per DeltaNet
layer, i.e. 36 x 28 = 1008 bytes per token for Qwen3-Next-80B (36 DeltaNet layers); seq_id and run_id are
dictionary/run-length encoded in Parquet and cost next to nothing per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from ...ops import decay
from ...trace.schema import TABLES, table_schema
from ...trace.tables import list_column, repeated_strings, seq_column

from .record import DeltaNetCapture


def deltanet_row_bytes() -> int:
    """Bytes of one `deltanet` row's fixed-width columns (everything but seq_id), from the schema."""
    return sum(c.type.bit_width // 8 for c in TABLES["deltanet"] if pa.types.is_integer(c.type)
               or pa.types.is_floating(c.type))


def deltanet_bytes_per_token(num_deltanet_layers: int) -> int:
    """Uncompressed bytes the default `deltanet` table adds per token: layers x row bytes."""
    return num_deltanet_layers * deltanet_row_bytes()


def _in_slice(indices, rows: slice) -> np.ndarray:
    indices = np.asarray(indices)
    return (indices >= rows.start) & (indices < rows.stop)


def _layer_major(capture: DeltaNetCapture, n: int) -> np.ndarray:
    return np.repeat(np.asarray(capture.layers, dtype=np.int16), n)


def deltanet_table(seq_id: str, capture: DeltaNetCapture, rows: slice) -> pa.Table:
    """One row per (DeltaNet layer, token) of rows `rows`, ordered (layer, position). (Tracing builds this table with
    `batch_deltanet_table`; this one-sequence form is its reference in the tests.)"""
    positions = capture.positions[rows].numpy().astype(np.int32)
    n, L = len(positions), len(capture.layers)

    def flat(tensor, dtype):  # [L, N] -> [L * n]
        return tensor[:, rows].reshape(-1).numpy().astype(dtype)

    columns = {"seq_id": seq_column(seq_id, L * n), "position": np.tile(positions, L), "layer": _layer_major(capture, n)}
    for column in TABLES["deltanet"][3:]:
        columns[column.name] = flat(getattr(capture, column.name), column.type.to_pandas_dtype())
    return pa.table(columns, schema=table_schema("deltanet"))


def batch_deltanet_table(sequences: list[tuple[str, slice]], capture: DeltaNetCapture) -> pa.Table:
    """`deltanet_table` of several sequences of one capture (the rows of a right-padded batch) at once: one gather
    per column instead of a table per sequence; equal to their concatenation in the given order."""
    L, total = len(capture.layers), capture.positions.shape[0]
    lengths = np.array([rows.stop - rows.start for _, rows in sequences], dtype=np.int64)
    # row r of the table reads flat index layer * total + token of the [L * total] flattened capture
    index = np.concatenate([(np.arange(L)[:, None] * total + np.arange(rows.start, rows.stop)).reshape(-1)
                            for _, rows in sequences])
    token = torch.from_numpy(index % total)
    gather = torch.from_numpy(index)
    columns = {
        "seq_id": repeated_strings([seq_id for seq_id, _ in sequences], lengths * L),
        "position": capture.positions[token].numpy().astype(np.int32),
        "layer": np.concatenate([_layer_major(capture, n) for n in lengths]),
    }
    for column in TABLES["deltanet"][3:]:
        values = getattr(capture, column.name).reshape(-1)[gather]
        columns[column.name] = values.numpy().astype(column.type.to_pandas_dtype())
    return pa.table(columns, schema=table_schema("deltanet"))


def deltanet_heads_table(seq_id: str, capture: DeltaNetCapture, rows: slice) -> pa.Table | None:
    """Per-head rows of the sequence (positions chosen at capture), or None when there are none."""
    keep = _in_slice(capture.head_rows, rows)
    if not keep.any():
        return None
    selected = capture.head_rows[keep]
    positions = capture.positions[selected].numpy().astype(np.int32)
    n, L = len(positions), len(capture.layers)
    schema = table_schema("deltanet_heads")
    columns = {"seq_id": seq_column(seq_id, L * n), "position": np.tile(positions, L), "layer": _layer_major(capture, n)}
    for name in ("state_norm", "log_decay", "beta", "half_life"):
        values = getattr(capture, f"head_{name}")[:, keep]  # [L, n, H]
        arrow_type = schema.field(name).type
        columns[name] = list_column(values.reshape(L * n, -1).numpy().astype(arrow_type.value_type.to_pandas_dtype()),
                                     arrow_type)
    return pa.table(columns, schema=schema)


def deltanet_head_summary_table(seq_id: str, capture: DeltaNetCapture, rows: slice) -> pa.Table | None:
    """One row per (layer, value head): the sequence's segments (call x batch row) combined; None without any."""
    return batch_head_summary_table([(seq_id, rows)], capture)


def batch_head_summary_table(sequences: list[tuple[str, slice]], capture: DeltaNetCapture) -> pa.Table | None:
    """`deltanet_head_summary_table` of several sequences at once (rows ordered sequence, layer, head): a 0/1
    membership matrix [sequences, segments] sums each sequence's segments in one product."""
    segments = capture.segments.numpy()
    member = np.stack([(segments[:, 0] >= rows.start) & (segments[:, 1] <= rows.stop) for _, rows in sequences])
    present = member.any(1)
    if not present.any():
        return None
    member, seq_ids = member[present], [seq_id for (seq_id, _), kept in zip(sequences, present) if kept]
    N, L, H = len(seq_ids), len(capture.layers), capture.segment_state_norm_sum.shape[-1]
    tokens = member.astype(np.int64) @ capture.segment_tokens.numpy()  # [N]
    weights = torch.from_numpy(member.astype(np.float64))

    def total(name):  # [L, S, H] -> [N * L * H] sums over each sequence's segments, float64
        return torch.einsum("ns,lsh->nlh", weights, getattr(capture, f"segment_{name}").double()).reshape(-1).numpy()

    per_token = np.repeat(tokens, L * H).astype(np.float64)
    log_decay_mean = total("log_decay_sum") / per_token
    maxima = capture.segment_state_norm_max[None].masked_fill(~torch.from_numpy(member)[:, None, :, None], -np.inf)
    return pa.table(
        {
            "seq_id": repeated_strings(seq_ids, [L * H] * N),
            "layer": np.tile(_layer_major(capture, H), N),
            "head": np.tile(np.arange(H, dtype=np.int16), L * N),
            "tokens": np.repeat(tokens, L * H).astype(np.int32),
            "state_norm_mean": (total("state_norm_sum") / per_token).astype(np.float32),
            "state_norm_max": maxima.amax(2).reshape(-1).numpy().astype(np.float32),
            "decay_mean": (total("decay_sum") / per_token).astype(np.float32),
            "beta_mean": (total("beta_sum") / per_token).astype(np.float32),
            "log_decay_mean": log_decay_mean.astype(np.float32),
            "half_life": decay.half_life(log_decay_mean).astype(np.float32),
        },
        schema=table_schema("deltanet_head_summary"),
    )


def state_recall_table(seq_id: str, capture: DeltaNetCapture, rows: slice) -> pa.Table | None:
    """One row per (layer, pair, token t >= key_pos) where recall was computed, or None."""
    if capture.recall_pairs is None:
        return None
    rel_err = capture.recall_rel_err[:, :, rows].numpy()  # [L, P, n, H]
    cos = capture.recall_cos[:, :, rows].numpy()
    layer_i, pair_i, token_i = np.nonzero(~np.isnan(rel_err[..., 0]))
    if not len(layer_i):
        return None
    rel_err, cos = rel_err[layer_i, pair_i, token_i], cos[layer_i, pair_i, token_i]  # [R, H]
    kept_cos = capture.recall_retention_cos[:, :, rows].numpy()[layer_i, pair_i, token_i]
    kept_ratio = capture.recall_retention_ratio[:, :, rows].numpy()[layer_i, pair_i, token_i]
    pairs = capture.recall_pairs.numpy()
    schema = table_schema("state_recall")
    return pa.table(
        {
            "seq_id": seq_column(seq_id, len(layer_i)),
            "layer": np.asarray(capture.layers, dtype=np.int16)[layer_i],
            "pair": pair_i.astype(np.int16),
            "key_pos": pairs[pair_i, 0].astype(np.int32),
            "value_pos": pairs[pair_i, 1].astype(np.int32),
            "position": capture.positions[rows].numpy()[token_i].astype(np.int32),
            "rel_err_mean": rel_err.mean(-1).astype(np.float16),
            "rel_err_min": rel_err.min(-1).astype(np.float16),
            "cos_mean": cos.mean(-1).astype(np.float16),
            "cos_max": cos.max(-1).astype(np.float16),
            "rel_err": list_column(rel_err.astype(np.float16), schema.field("rel_err").type),
            "cos": list_column(cos.astype(np.float16), schema.field("cos").type),
            "retention_cos_mean": kept_cos.mean(-1).astype(np.float32),
            "retention_ratio_mean": kept_ratio.mean(-1).astype(np.float32),
            "retention_cos": list_column(kept_cos.astype(np.float32), schema.field("retention_cos").type),
            "retention_ratio": list_column(kept_ratio.astype(np.float32), schema.field("retention_ratio").type),
        },
        schema=schema,
    )


def state_snapshots_table(seq_id: str, capture: DeltaNetCapture, rows: slice) -> pa.Table | None:
    """One row per (layer, snapshot position, value head), or None without snapshots in the sequence."""
    keep = _in_slice(capture.snapshot_rows, rows)
    if not keep.any():
        return None
    positions = capture.positions[capture.snapshot_rows[keep]].numpy().astype(np.int32)
    eff_rank = capture.snapshot_eff_rank[:, keep].numpy()  # [L, Q, H]
    L, Q, H = eff_rank.shape
    return pa.table(
        {
            "seq_id": seq_column(seq_id, L * Q * H),
            "layer": np.repeat(np.asarray(capture.layers, dtype=np.int16), Q * H),
            "position": np.tile(np.repeat(positions, H), L),
            "head": np.tile(np.arange(H, dtype=np.int16), L * Q),
            "eff_rank": eff_rank.reshape(-1).astype(np.float32),
            "top_sv": capture.snapshot_top_sv[:, keep].reshape(-1).numpy().astype(np.float32),
        },
        schema=table_schema("state_snapshots"),
    )


def deltanet_contribution_table(seq_id: str, capture: DeltaNetCapture, rows: slice) -> pa.Table | None:
    """One row per (layer, analysed query row, value head): span shares of the kernel output, or None."""
    if capture.contribution_positions is None:
        return None
    norm_ratio = capture.contribution_norm_ratio.numpy()  # [L, S, R, H]
    L, S, R, H = norm_ratio.shape
    spans = capture.contribution_spans
    schema = table_schema("deltanet_contribution")

    def shares(values: np.ndarray) -> pa.Array:  # [L, S, R, H] -> list<struct<span, share>> per (layer, row, head)
        per_row = values.transpose(0, 2, 3, 1).reshape(-1, S).astype(np.float32)
        return pa.array([[{"span": s, "share": float(x)} for s, x in zip(spans, row)] for row in per_row],
                        type=schema.field("span_norm_ratio").type)

    def flat(values) -> np.ndarray:  # [L, R, H] -> [L * R * H]
        return values.reshape(-1).numpy().astype(np.float32)

    return pa.table(
        {
            "seq_id": seq_column(seq_id, L * R * H),
            "position": np.tile(np.repeat(capture.contribution_positions.numpy().astype(np.int32), H), L),
            "layer": np.repeat(np.asarray(capture.layers, dtype=np.int16), R * H),
            "head": np.tile(np.arange(H, dtype=np.int16), L * R),
            "span_norm_ratio": shares(norm_ratio),
            "span_projection": shares(capture.contribution_projection.numpy()),
            "rest_norm_ratio": flat(capture.contribution_rest_norm_ratio),
            "rest_projection": flat(capture.contribution_rest_projection),
            "output_norm": flat(capture.contribution_output_norm),
        },
        schema=schema,
    )


PER_SEQUENCE = (("deltanet_heads", deltanet_heads_table), ("state_recall", state_recall_table),
                ("state_snapshots", state_snapshots_table), ("deltanet_contribution", deltanet_contribution_table))  # tables with few rows per sequence


def deltanet_tables(seq_id: str, capture: DeltaNetCapture, rows: slice) -> dict[str, pa.Table]:
    """Every DeltaNet table that has rows for this sequence (`deltanet` always)."""
    return batch_deltanet_tables([(seq_id, rows)], capture)


def batch_deltanet_tables(sequences: list[tuple[str, slice]], capture: DeltaNetCapture) -> dict[str, pa.Table]:
    """`deltanet_tables` of several sequences of one capture, each table's rows in sequence order: the per-token
    `deltanet` table by one gather per column, the head summary by one product, the other small per-sequence tables
    one sequence at a time."""
    tables = {"deltanet": batch_deltanet_table(sequences, capture)}
    summary = batch_head_summary_table(sequences, capture)
    if summary is not None:
        tables["deltanet_head_summary"] = summary
    for name, build in PER_SEQUENCE:
        parts = [t for t in (build(seq_id, capture, rows) for seq_id, rows in sequences) if t is not None]
        if parts:
            tables[name] = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    return tables
