"""Per-token metrics of one sequence at one layer, for the token explorer: the text coloured by a metric."""

from __future__ import annotations

import pandas as pd

from . import needle
from .db import Scope, TraceDB

# metric -> (table, SQL expression over that table's row, what it means)
TOKEN_METRICS = {
    "top-1 expert": ("routing", "topk_ids[1]", "the router's first choice"),
    "router entropy": ("routing", "router_entropy", "entropy of softmax(router logits), nats"),
    "top-k margin": ("routing", "topk_margin", "p(k) - p(k+1)"),
    "shared-expert gate": ("routing", "shared_gate", "sigmoid(shared expert gate)"),
    "state norm": ("deltanet", "state_norm_mean", "||S_t||_F, mean over value heads"),
    "needle mass": ("attention", None, "needle mass of the max head at the row (analysis.needle; rows before the "
                                       "needle's end have none)"),
}


def metric_layers(db: TraceDB, scope: Scope, metric: str) -> list[int]:
    """Layers that carry `metric` in the run (MoE layers for routing metrics, DeltaNet or attention layers)."""
    table = TOKEN_METRICS[metric][0]
    if not db.has(table):
        return []
    return db.frame(f"SELECT DISTINCT layer FROM {table} WHERE run_id = ? ORDER BY layer", [scope.run_id]).layer.tolist()


def token_metric(db: TraceDB, scope: Scope, seq_id: str, layer: int, metric: str) -> pd.DataFrame:
    """Every token of a sequence (within the scope's position window) with the metric at `layer`: position, token,
    token_id, value (null where the table has no row, e.g. tokens that were not analysed attention queries)."""
    if metric not in TOKEN_METRICS:
        raise ValueError(f"unknown token metric {metric!r}; choose one of {', '.join(TOKEN_METRICS)}")
    table, expression, _ = TOKEN_METRICS[metric]
    where, params = scope.where("t", layer=False)
    if not db.has(table):
        raise ValueError(f"this trace has no {table!r} table, which {metric!r} needs")
    if expression is None:  # needle mass: its one definition, rows after the span only
        rows = needle.row_max_head(db, scope.run_id, seq_id, layer)[["position", "value"]]
        base = db.frame(f"SELECT t.position, t.token, t.token_id FROM tokens t WHERE {where} AND t.seq_id = ? "
                        f"ORDER BY t.position", [*params, seq_id])
        return base.merge(rows, on="position", how="left")
    return db.frame(
        f"""SELECT t.position, t.token, t.token_id, m.value FROM tokens t LEFT JOIN (
              SELECT position, {expression} AS value FROM {table}
              WHERE run_id = ? AND seq_id = ? AND layer = ?) m USING (position)
            WHERE {where} AND t.seq_id = ? ORDER BY t.position""",
        [scope.run_id, seq_id, int(layer), *params, seq_id])
