"""Attribution records -> the `logit_attribution` table (one row per position and component)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ...trace.schema import table_schema
from ...trace.tables import seq_column
from .record import AttributionCapture


def attribution_table(seq_id: str, record: AttributionCapture) -> pa.Table:
    """Rows ordered (position, component in the record's order)."""
    p, c = len(record.positions), len(record.component)
    values = np.stack(record.values, axis=1).reshape(-1)  # [P, C] -> position-major
    weights = np.stack(record.weights, axis=1).reshape(-1)

    def tiled(items, fill):
        array = np.tile(np.asarray(items, dtype=np.int64), p)
        return pa.array(array, type=pa.int16(), mask=array == fill)

    foils = np.repeat(record.foils if record.foils is not None else np.full(p, -1), c)
    return pa.table({
        "seq_id": seq_column(seq_id, p * c),
        "position": np.repeat(record.positions, c).astype(np.int32),
        "target_token_id": np.repeat(record.targets, c).astype(np.int32),
        "foil_token_id": pa.array(foils.astype(np.int32), mask=foils < 0),
        "layer": tiled(record.layer, -1),
        "component": pa.array(list(record.component) * p, type=pa.string()),
        "head": tiled(record.head, -1),
        "expert": tiled(record.expert, -1),
        "routing_weight": pa.array(weights.astype(np.float32), mask=np.isnan(weights)),
        "value": values.astype(np.float32),
        "model_logit": np.repeat(record.model_logit, c).astype(np.float32),
    }, schema=table_schema("logit_attribution"))
