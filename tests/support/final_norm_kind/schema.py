"""Columns of the final_norm test kind's table."""

import pyarrow as pa

from workbench.trace.column import POSITION, SEQ_ID, Column

FINAL_NORM_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("norm", pa.float32(), "||final_norm(h_t)||_2 of the token, units of the hidden state (a test kind)."),
)
