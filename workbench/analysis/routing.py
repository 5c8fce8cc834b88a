"""Routing and sparsity over DuckDB: expert load, router-confidence distributions, load by prompt label, load
drift over positions. Every function takes a TraceDB and a Scope and returns a small frame; the pure
reductions of those frames (balance, divergence) are in `analysis.balance`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .db import Scope, TraceDB

ROUTER_METRICS = {
    "router_entropy": "router entropy (nats)",
    "topk_mass": "top-k mass",
    "topk_margin": "k-th margin p(k) - p(k+1)",
    "shared_gate": "shared-expert gate",
}
SHARE_METRICS = ("topk_mass", "shared_gate")  # values in [0, 1]: drawn on an axis from 0


def _zero_fill(counts: pd.DataFrame, keys: list[str], num_experts: int | None) -> pd.DataFrame:
    """Add count-0 rows for experts never chosen (0..num_experts-1, or up to the largest id seen) per key."""
    if counts.empty:
        return pd.DataFrame(columns=[*keys, "expert", "count", "fraction"])
    num_experts = int(num_experts or counts.expert.max() + 1)
    groups = counts[keys].drop_duplicates()
    grid = groups.merge(pd.DataFrame({"expert": np.arange(num_experts)}), how="cross")
    full = grid.merge(counts, on=[*keys, "expert"], how="left").fillna({"count": 0})
    full["count"] = full["count"].astype(np.int64)
    full["fraction"] = full["count"] / full.groupby(keys)["count"].transform("sum")
    return full.sort_values([*keys, "expert"]).reset_index(drop=True)


def expert_load(db: TraceDB, scope: Scope, num_experts: int | None = None) -> pd.DataFrame:
    """How often each expert is chosen (any of the k slots), per layer.
    Returns layer, expert, count, fraction (count / (tokens x k) of the layer: each layer sums to 1); experts never
    chosen appear with count 0."""
    where, params = scope.where()
    counts = db.frame(f"SELECT layer, expert, count(*) AS count FROM (SELECT layer, unnest(topk_ids) AS expert "
                      f"FROM routing WHERE {where}) GROUP BY layer, expert", params)
    return _zero_fill(counts, ["layer"], num_experts)


def load_by_label(db: TraceDB, scope: Scope, num_experts: int | None = None) -> pd.DataFrame:
    """Expert load per (layer, prompt label): layer, label, expert, count, fraction (sums to 1 per layer and
    label). Sequences without a label are grouped as '(none)'."""
    where, params = scope.where("r")
    counts = db.frame(
        f"""WITH labels AS (SELECT DISTINCT seq_id, coalesce(label, '(none)') AS label FROM tokens WHERE run_id = ?)
        SELECT layer, label, expert, count(*) AS count FROM (
            SELECT r.layer, l.label, unnest(r.topk_ids) AS expert FROM routing r JOIN labels l USING (seq_id)
            WHERE {where}) GROUP BY layer, label, expert""", [scope.run_id, *params])
    return _zero_fill(counts, ["layer", "label"], num_experts)


def load_drift(db: TraceDB, scope: Scope, bucket: int, num_experts: int | None = None) -> pd.DataFrame:
    """Expert load per (layer, position bucket): layer, bucket (first position of the bucket of `bucket` tokens),
    expert, count, fraction (sums to 1 per layer and bucket)."""
    if bucket < 1:
        raise ValueError(f"position bucket must be at least 1 token, got {bucket}")
    where, params = scope.where()
    counts = db.frame(f"SELECT layer, bucket, expert, count(*) AS count FROM (SELECT layer, "
                      f"(position // {int(bucket)}) * {int(bucket)} AS bucket, unnest(topk_ids) AS expert "
                      f"FROM routing WHERE {where}) GROUP BY ALL", params)
    return _zero_fill(counts, ["layer", "bucket"], num_experts)


def metric_quantiles(db: TraceDB, scope: Scope, metric: str) -> pd.DataFrame:
    """Distribution of a per-token router metric per layer: layer, rows, mean, p05, p25, p50, p75, p95 (a box plot
    drawn from these needs no raw rows). metric: one of ROUTER_METRICS."""
    if metric not in ROUTER_METRICS:
        raise ValueError(f"unknown router metric {metric!r}; choose one of {', '.join(ROUTER_METRICS)}")
    where, params = scope.where()
    frame = db.frame(
        f"SELECT layer, count({metric}) AS rows, avg({metric}) AS mean, "
        f"quantile_cont({metric}, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q FROM routing WHERE {where} "
        f"AND {metric} IS NOT NULL GROUP BY layer ORDER BY layer", params)
    quantiles = pd.DataFrame(frame.pop("q").tolist(), columns=["p05", "p25", "p50", "p75", "p95"], index=frame.index)
    return pd.concat([frame, quantiles], axis=1)


def metric_histogram(db: TraceDB, scope: Scope, metric: str, bins: int = 40) -> pd.DataFrame:
    """Histogram of a router metric per layer over equal bins between its smallest and largest value:
    layer, bin (0-based), lo, hi, count."""
    if metric not in ROUTER_METRICS:
        raise ValueError(f"unknown router metric {metric!r}; choose one of {', '.join(ROUTER_METRICS)}")
    where, params = scope.where()
    lo, hi = db.frame(f"SELECT min({metric}) lo, max({metric}) hi FROM routing WHERE {where}", params).iloc[0]
    if pd.isna(lo):
        return pd.DataFrame(columns=["layer", "bin", "lo", "hi", "count"])
    width = (float(hi) - float(lo)) / bins or 1.0
    frame = db.frame(
        f"SELECT layer, least(CAST(floor(({metric} - ?) / ?) AS INTEGER), {bins - 1}) AS bin, count(*) AS count "
        f"FROM routing WHERE {where} AND {metric} IS NOT NULL GROUP BY ALL ORDER BY layer, bin",
        [float(lo), width, *params])
    frame["lo"] = float(lo) + frame["bin"] * width
    frame["hi"] = frame["lo"] + width
    return frame[["layer", "bin", "lo", "hi", "count"]]
