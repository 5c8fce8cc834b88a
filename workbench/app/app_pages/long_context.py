"""Long context: context length x needle depth heatmaps per layer from the `needle_sweep` table (written by the
long-context probes)."""

import streamlit as st

from workbench.analysis.long_context import SWEEP_VALUES, model_grid, sweep_grid
from workbench.app.figures.views import sweep_heatmap, sweep_heatmaps
from workbench.app.state import query, require_run, show

st.title("Long context")
db, manifest, scope = require_run()
if "needle_sweep" not in manifest.get("tables", []) or not db.has("needle_sweep"):
    st.info("This run has no `needle_sweep` table yet. The long-context probes write one row per (context length, "
            "needle depth, layer, head) with exact-match accuracy, attention needle mass, DeltaNet needle "
            "contribution and state retention; `workbench schema` lists its columns.")
    st.stop()
value = st.radio("Measure", list(SWEEP_VALUES), format_func=SWEEP_VALUES.get, horizontal=True, key="sweep_value")
grid = query(sweep_grid, scope, value)
if grid.empty:
    st.info(f"No layer of this run has {SWEEP_VALUES[value]} (null where it does not apply).")
    st.stop()
if value == "exact_match":  # a model-level outcome: one grid, not one copy per layer
    show(sweep_heatmap(model_grid(grid), "Exact-match accuracy (model)", SWEEP_VALUES[value], 1.0), "sweep exact match")
    st.stop()
figures = sweep_heatmaps(grid, SWEEP_VALUES[value], zmax=1.0 if value != "deltanet_needle_contribution" else None)
columns = st.columns(2)
for index, figure in enumerate(figures):
    with columns[index % 2]:
        show(figure, f"sweep {value} {index}")
