"""Long context over DuckDB: the `needle_sweep` table (written by the long-context probes) as length x depth
grids per layer."""

from __future__ import annotations

import pandas as pd

from .db import Scope, TraceDB

SWEEP_VALUES = {
    "exact_match": "exact-match accuracy",
    "needle_mass": "attention mass on the needle",
    "deltanet_needle_contribution": "DeltaNet needle contribution",
    "state_retention": "state retention",
}


def sweep_grid(db: TraceDB, scope: Scope, value: str) -> pd.DataFrame:
    """Per (layer, layer_kind, context_length, needle_depth): the mean of `value` over heads (rows where it is not
    null) and prompts (sum). Layers where `value` does not apply (all null) are left out."""
    if value not in SWEEP_VALUES:
        raise ValueError(f"unknown needle_sweep value {value!r}; choose one of {', '.join(SWEEP_VALUES)}")
    where, params = scope.where(position=False)
    return db.frame(
        f"SELECT layer, any_value(layer_kind) AS layer_kind, context_length, needle_depth, avg({value}) AS value, "
        f"count({value}) AS rows FROM needle_sweep WHERE {where} AND {value} IS NOT NULL "
        f"GROUP BY layer, context_length, needle_depth ORDER BY layer, context_length, needle_depth", params)


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
    """Per layer, side by side: attention mass on `span` (full-attention layers, mean over query rows and heads of
    `attention.span_mass`) and the DeltaNet contribution of `span` (DeltaNet layers, mean of
    `deltanet_contribution.span_norm_ratio` and `span_projection`). Columns layer, layer_kind, measure, value, rows;
    empty when neither table holds the span."""
    frames = []
    where, params = scope.where(position=False)
    if db.has("attention"):
        frames.append(db.frame(
            f"SELECT layer, 'full_attention' AS layer_kind, 'attention mass' AS measure, "
            f"avg(span_mass[?]) AS value, count(span_mass[?]) AS rows FROM attention "
            f"WHERE {where} AND span_mass[?] IS NOT NULL GROUP BY layer", [span, span, *params, span]))
    if db.has("deltanet_contribution"):
        for measure, column in (("DeltaNet norm ratio", "span_norm_ratio"), ("DeltaNet projection", "span_projection")):
            frames.append(db.frame(
                f"SELECT layer, 'linear_attention' AS layer_kind, '{measure}' AS measure, avg({column}[?]) AS value, "
                f"count({column}[?]) AS rows FROM deltanet_contribution WHERE {where} AND {column}[?] IS NOT NULL "
                f"GROUP BY layer", [span, span, *params, span]))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["layer", "layer_kind", "measure", "value", "rows"])
    return pd.concat(frames, ignore_index=True).sort_values(["layer", "measure"]).reset_index(drop=True)


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
