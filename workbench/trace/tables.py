"""The trace's own tables (tokens, spans) and the Arrow column helpers every kind's table builder uses."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..inputs.spans import TokenSpan
from .schema import table_schema


def seq_column(seq_id: str, n: int) -> pa.Array:
    """A string column of `n` copies of `seq_id` (built in Arrow: no Python list of n strings)."""
    return pa.repeat(pa.scalar(seq_id, pa.string()), n)


def repeated_strings(values: list[str | None], counts) -> pa.Array:
    """values[0] `counts[0]` times, then values[1] `counts[1]` times, ...: a string column (None: nulls), one
    `pa.repeat` per value (a `take` of the values by a row index costs 15x more at 200K rows)."""
    parts = [pa.repeat(pa.scalar(value, pa.string()), int(n)) for value, n in zip(values, counts)]
    return pa.concat_arrays(parts) if parts else pa.array([], type=pa.string())


def list_column(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """[rows, k] numpy -> list<...> column with k entries per row."""
    rows, width = values.shape
    flat = pa.array(values.reshape(-1), type=arrow_type.value_type)
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, type=arrow_type)


def tokens_table(seq_ids: list[str], token_ids: list, labels: list[str | None], vocab: pa.Array,
                 logprobs: np.ndarray | None = None) -> pa.Table:
    """The tokens rows of one or more sequences, concatenated in order (seq_id, position, token_id, token, label,
    logprob); `vocab` holds the token string of every id (tracing.token_strings: the tokenizer's
    convert_ids_to_tokens of 0..len-1), so the token strings are one `take`, not a Python lookup per token.
    logprobs: one float per row, NaN where none (prompt tokens); None = all null."""
    lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
    ids = np.concatenate([np.asarray(ids) for ids in token_ids]).astype(np.int32)  # arrays (tracing) or lists
    return pa.table(
        {
            "seq_id": repeated_strings(seq_ids, lengths),
            "position": np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
            "token_id": ids,
            "token": pc.take(vocab, pa.array(ids)),
            "label": repeated_strings(labels, lengths),
            "logprob": pa.nulls(len(ids), pa.float32()) if logprobs is None else
            pa.array(logprobs, type=pa.float32(), mask=np.isnan(logprobs)),
        },
        schema=table_schema("tokens"),
    )


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
