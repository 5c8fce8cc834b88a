"""MTPCapture -> the `mtp` table (rows of one sequence)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ...trace.schema import table_schema
from ...trace.tables import seq_column

from .record import MTPCapture


def mtp_table(seq_id: str, capture: MTPCapture, row: int, num_tokens: int) -> pa.Table:
    """The rows t = 0 .. num_tokens-2 of batch row `row` of an MTPCapture."""
    n = num_tokens - 1
    correct = capture.draft_correct[row, :n].numpy()
    return pa.table(
        {
            "seq_id": seq_column(seq_id, n),
            "position": np.arange(n, dtype=np.int32),
            "draft_token_id": capture.draft[row, :n].numpy().astype(np.int32),
            "trunk_token_id": capture.trunk_next[row, :n].numpy().astype(np.int32),
            "accepted": capture.accepted[row, :n].numpy(),
            "draft_correct": pa.array(correct == 1, mask=correct < 0, type=pa.bool_()),
            "p_accepted": capture.p_accepted[row, :n].numpy().astype(np.float32),
            "tie": capture.tie[row, :n].numpy(),
        },
        schema=table_schema("mtp"),
    )
