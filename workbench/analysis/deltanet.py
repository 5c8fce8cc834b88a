"""DeltaNet state over DuckDB (`deltanet`, `deltanet_heads`, `deltanet_head_summary`, `state_recall`,
`state_snapshots`): norm-vs-position curves, gate and half-life summaries, recall curves, spectra."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..ops import decay
from .db import Scope, TraceDB

GATE_COLUMNS = ("decay_mean", "beta_mean", "half_life_mean")


def half_life(log_decay: np.ndarray | float) -> np.ndarray:
    """Memory half-life in tokens, ln 2 / -g, for log decay g <= 0 (inf where g = 0): ops.decay.half_life in float64."""
    return decay.half_life(np.asarray(log_decay, dtype=float))


def state_norm_curves(db: TraceDB, scope: Scope, seq_id: str) -> pd.DataFrame:
    """One sequence's ||S_t||_F per (layer, position): layer, position, state_norm_mean, state_norm_max."""
    where, params = scope.where()
    return db.frame(f"SELECT layer, position, state_norm_mean, state_norm_max FROM deltanet WHERE {where} "
                    f"AND seq_id = ? ORDER BY layer, position", [*params, seq_id])


def gate_quantiles(db: TraceDB, scope: Scope, column: str) -> pd.DataFrame:
    """Per layer, the distribution over tokens of a per-token gate column (decay_mean, beta_mean, half_life_mean):
    layer, rows, mean, p05, p25, p50, p75, p95."""
    if column not in GATE_COLUMNS:
        raise ValueError(f"unknown DeltaNet gate column {column!r}; choose one of {', '.join(GATE_COLUMNS)}")
    where, params = scope.where()
    frame = db.frame(f"SELECT layer, count(*) AS rows, avg({column}) AS mean, quantile_cont({column}, "
                     f"[0.05, 0.25, 0.5, 0.75, 0.95]) AS q FROM deltanet WHERE {where} AND isfinite({column}) "
                     f"GROUP BY layer ORDER BY layer", params)
    quantiles = pd.DataFrame(frame.pop("q").tolist(), columns=["p05", "p25", "p50", "p75", "p95"], index=frame.index)
    return pd.concat([frame, quantiles], axis=1)


def head_summary(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """`deltanet_head_summary` per (layer, head) over the scope's sequences, each weighted by its tokens: tokens,
    decay_mean, beta_mean, state_norm_mean, log_decay_mean, half_life = ln 2 / -(token-weighted mean g)."""
    where, params = scope.where(position=False)
    frame = db.frame(
        f"SELECT layer, head, sum(tokens)::BIGINT AS tokens, sum(decay_mean * tokens) / sum(tokens) AS decay_mean, "
        f"sum(beta_mean * tokens) / sum(tokens) AS beta_mean, "
        f"sum(state_norm_mean * tokens) / sum(tokens) AS state_norm_mean, "
        f"sum(log_decay_mean * tokens) / sum(tokens) AS log_decay_mean FROM deltanet_head_summary "
        f"WHERE {where} GROUP BY layer, head ORDER BY layer, head", params)
    frame["half_life"] = half_life(frame.log_decay_mean.to_numpy())
    return frame


def head_norm_curves(db: TraceDB, scope: Scope, seq_id: str, layer: int) -> pd.DataFrame:
    """Per-head ||S_t||_F of one sequence and layer from `deltanet_heads`: position, head, state_norm."""
    where, params = scope.where(layer=False)
    return db.frame(
        f"""SELECT position, head, state_norm FROM (
              SELECT position, unnest(range(len(state_norm))) AS head, unnest(state_norm) AS state_norm
              FROM deltanet_heads WHERE {where} AND seq_id = ? AND layer = ?) ORDER BY head, position""",
        [*params, seq_id, int(layer)])


RECALL_MEASURES = {
    "retention_cos_mean": "retention cosine, readout now vs right after the write (mean over heads)",
    "retention_ratio_mean": "retention norm ratio, readout now / right after the write (mean over heads)",
    "rel_err_mean": "||S^T k - v|| / ||v|| (mean over heads; mixes write strength with retention)",
    "rel_err_min": "best head's rel. error (mixes write strength with retention)",
    "cos_mean": "cosine with v (mean over heads; mixes write strength with retention)",
    "cos_max": "best head's cosine with v (mixes write strength with retention)",
}


def recall_curves(db: TraceDB, scope: Scope, seq_id: str) -> pd.DataFrame:
    """`state_recall` rows of one sequence with distance = position - key_pos (tokens since the key was written):
    layer, pair, key_pos, value_pos, position, distance, and every RECALL_MEASURES column (the retention measures,
    which separate forgetting from write strength, first)."""
    where, params = scope.where()
    return db.frame(f"SELECT layer, pair, key_pos, value_pos, position, position - key_pos AS distance, "
                    f"{', '.join(RECALL_MEASURES)} FROM state_recall WHERE {where} AND seq_id = ? "
                    f"ORDER BY pair, layer, position", [*params, seq_id])


def snapshot_heads(db: TraceDB, scope: Scope, seq_id: str) -> pd.DataFrame:
    """`state_snapshots` of one sequence: layer, position, head, eff_rank, top_sv."""
    where, params = scope.where(position=False)
    return db.frame(f"SELECT layer, position, head, eff_rank, top_sv FROM state_snapshots WHERE {where} "
                    f"AND seq_id = ? ORDER BY position, layer, head", [*params, seq_id])


def state_norm_difference(db: TraceDB, scope_a: Scope, run_b: str) -> pd.DataFrame:
    """Two runs' `deltanet` state norms on the same (seq_id, position, layer) rows, per layer: layer, tokens,
    mean_a, mean_b, mean_abs_diff, max_abs_diff (of state_norm_mean)."""
    scope_b = Scope(run_b, scope_a.layers, None, scope_a.seq_id, scope_a.positions)
    where_a, params_a = scope_a.where("a")
    where_b, params_b = scope_b.where("b")
    return db.frame(
        f"""SELECT a.layer, count(*) AS tokens, avg(a.state_norm_mean) AS mean_a, avg(b.state_norm_mean) AS mean_b,
                   avg(abs(a.state_norm_mean - b.state_norm_mean)) AS mean_abs_diff,
                   max(abs(a.state_norm_mean - b.state_norm_mean)) AS max_abs_diff
            FROM deltanet a JOIN deltanet b ON a.seq_id = b.seq_id AND a.position = b.position AND a.layer = b.layer
            WHERE {where_a} AND {where_b} GROUP BY a.layer ORDER BY a.layer""", [*params_a, *params_b])
