"""The final_norm test kind's table builder."""

import numpy as np
import pyarrow as pa

from workbench.trace.schema import table_schema
from workbench.trace.tables import seq_column


def final_norm_table(seq_id: str, norms, stride: int) -> pa.Table:
    """One sequence's norms [T] -> rows at positions 0, stride, 2 stride, ..."""
    positions = np.arange(0, len(norms), stride, dtype=np.int32)
    return pa.table({"seq_id": seq_column(seq_id, len(positions)), "position": positions,
                     "norm": norms.numpy()[positions].astype(np.float32)}, schema=table_schema("final_norm"))
