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
