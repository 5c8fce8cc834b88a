"""Long context over DuckDB: the `needle_sweep` table (written by the long-context probes) as length x depth
grids per layer, and where a traced needle reaches each layer's output. Needle mass is `analysis.needle`'s."""

from __future__ import annotations

import pandas as pd

from . import needle
from .db import Scope, TraceDB

# value -> its title on axes and colour bars, naming the aggregate over heads
SWEEP_VALUES = {
    "exact_match": "exact-match accuracy",
    "needle_mass": needle.SWEEP_MAX_HEAD_TITLE,
    "deltanet_needle_contribution": "DeltaNet needle contribution (mean over heads)",
    "state_retention": "state retention (mean over heads)",
}


def sweep_grid(db: TraceDB, scope: Scope, value: str) -> pd.DataFrame:
    """Per (layer, layer_kind, context_length, needle_depth): `value` over heads and the cell's prompts. needle_mass:
    the max head (`needle.sweep_max_head`; column head says which); every other value: the mean over heads (rows
    where it is not null; head is null). Layers where `value` does not apply (all null) are left out. Columns layer,
    layer_kind, context_length, needle_depth, value, rows (heads with a value), head."""
    if value not in SWEEP_VALUES:
        raise ValueError(f"unknown needle_sweep value {value!r}; choose one of {', '.join(SWEEP_VALUES)}")
    where, params = scope.where(position=False)
    grid = db.frame(
        f"SELECT layer, any_value(layer_kind) AS layer_kind, context_length, needle_depth, avg({value}) AS value, "
        f"count({value}) AS rows FROM needle_sweep WHERE {where} AND {value} IS NOT NULL "
        f"GROUP BY layer, context_length, needle_depth ORDER BY layer, context_length, needle_depth", params)
    if value != "needle_mass" or grid.empty:
        return grid.assign(head=pd.NA)
    keys = ["layer", "context_length", "needle_depth"]
    best = needle.sweep_max_head(db, scope)[[*keys, "head", "value"]]
    return grid.drop(columns="value").merge(best, on=keys)[["layer", "layer_kind", *keys[1:], "value", "rows", "head"]]


def model_grid(grid: pd.DataFrame) -> pd.DataFrame:
    """A per-layer sweep_grid of a model-level value (exact_match is repeated on every layer's rows) -> one
    (context_length, needle_depth, value) grid, the mean over layers."""
    return grid.groupby(["context_length", "needle_depth"], as_index=False)["value"].mean()


def _run_filter(scope: Scope, layer: bool = True) -> tuple[str, list]:
    """run (and layer) conditions for the probe tables, which have no seq_id or position."""
    conditions, params = ["run_id = ?"], [scope.run_id]
    if layer and scope.layers is not None:
        conditions.append(f"layer IN ({', '.join(str(int(x)) for x in scope.layers) or 'NULL'})")
    return " AND ".join(conditions), params


def needle_by_layer(db: TraceDB, scope: Scope, span: str = "needle") -> pd.DataFrame:
    """Per layer, side by side: the needle mass of `span` (full-attention layers: `needle.needle_mass`, the max
    head; column head says which) and the DeltaNet contribution of `span` (DeltaNet layers, mean over rows and heads
    of `deltanet_contribution.span_norm_ratio` and `span_projection`; head null). Columns layer, layer_kind, measure,
    value, rows, head; empty when neither table holds the span."""
    frames = []
    where, params = scope.where(position=False)
    if db.has("attention") and db.has("spans"):
        best = needle.max_head(needle.needle_mass(db, scope, span))
        if not best.empty:
            frames.append(best.rename(columns={"mass": "value"}).assign(
                layer_kind="full_attention", measure=NEEDLE_MEASURE))
    if db.has("deltanet_contribution"):
        for measure, column in DELTANET_MEASURES.items():
            frames.append(db.frame(
                f"SELECT layer, 'linear_attention' AS layer_kind, '{measure}' AS measure, avg({column}[?]) AS value, "
                f"count({column}[?]) AS rows, NULL AS head FROM deltanet_contribution WHERE {where} "
                f"AND {column}[?] IS NOT NULL GROUP BY layer", [span, span, *params, span]))
    columns = ["layer", "layer_kind", "measure", "value", "rows", "head"]
    frames = [f[columns] for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).sort_values(["layer", "measure"]).reset_index(drop=True)


NEEDLE_MEASURE = "needle mass, max head"
DELTANET_MEASURES = {"DeltaNet norm ratio (mean over rows and heads)": "span_norm_ratio",
                     "DeltaNet projection (mean over rows and heads)": "span_projection"}


CAPACITY_VALUES = {
    "retention_ratio": "retention (norm ratio)",
    "retention_cos": "retention (cosine)",
    "recall_cos": "recall cosine vs raw v",
}


def capacity_grid(db: TraceDB, scope: Scope, value: str) -> pd.DataFrame:
    """state_capacity per (layer, context_length, pairs, keys_after): mean `value`; plus accuracy per
    (context_length, pairs). Columns layer, context_length, pairs, keys_after, value, accuracy."""
    if value not in CAPACITY_VALUES:
        raise ValueError(f"unknown state_capacity value {value!r}; choose one of {', '.join(CAPACITY_VALUES)}")
    where, params = _run_filter(scope)
    return db.frame(f"SELECT layer, context_length, pairs, keys_after, avg({value}) AS value, avg(accuracy) AS accuracy "
                    f"FROM state_capacity WHERE {where} GROUP BY ALL ORDER BY layer, context_length, pairs, keys_after",
                    params)


def ablation_results(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """layer_ablation rows of the run (an intervention): intervention, condition, mode, suite, context_length,
    prompts, exact_match, accuracy_drop, in the order written."""
    where, params = _run_filter(scope, layer=False)
    return db.frame(f"SELECT intervention, condition, coalesce(mode, '-') AS mode, layer_kind, suite, context_length, "
                    f"prompts, exact_match, accuracy_drop FROM layer_ablation WHERE {where}", params)
