"""Expert saliency sums (capture/saliency/) -> the `expert_saliency` and `shared_expert_share` tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ...trace.schema import table_schema
from ...trace.tables import seq_column

from .record import ExpertSaliencyCapture


def saliency_tables(seq_id: str, record: ExpertSaliencyCapture) -> dict[str, pa.Table]:
    """One sequence's record -> {"expert_saliency": rows per (layer, expert chosen >= once), ordered (layer, expert),
    "shared_expert_share": rows per layer that has a gated shared expert}."""
    count = record.count.numpy()  # [L, E]
    layer_idx, expert = np.nonzero(count)
    chosen = count[layer_idx, expert].astype(np.float64)
    layers = np.asarray(record.layers, dtype=np.int16)
    tables = {"expert_saliency": pa.table({
        "seq_id": seq_column(seq_id, len(expert)),
        "layer": layers[layer_idx],
        "expert": expert.astype(np.int16),
        "count": count[layer_idx, expert].astype(np.int32),
        "gate_mean": (record.gate_sum.numpy()[layer_idx, expert] / chosen).astype(np.float32),
        "output_norm_mean": (record.norm_sum.numpy()[layer_idx, expert] / chosen).astype(np.float32),
        "reap": (record.reap_sum.numpy()[layer_idx, expert] / chosen).astype(np.float32),
    }, schema=table_schema("expert_saliency"))}
    tokens = record.shared_tokens.numpy()
    has = tokens > 0
    if has.any():
        n = tokens[has].astype(np.float64)
        tables["shared_expert_share"] = pa.table({
            "seq_id": seq_column(seq_id, int(has.sum())),
            "layer": layers[has],
            "tokens": tokens[has].astype(np.int32),
            "share_mean": (record.share_sum.numpy()[has] / n).astype(np.float32),
            "shared_norm_mean": (record.shared_norm_sum.numpy()[has] / n).astype(np.float32),
            "routed_norm_mean": (record.routed_norm_sum.numpy()[has] / n).astype(np.float32),
        }, schema=table_schema("shared_expert_share"))
    return tables
