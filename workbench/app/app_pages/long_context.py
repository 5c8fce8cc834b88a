"""Long context: where a far-back fact reaches the output, layer by layer. Sections by what the run holds:
attention needle mass beside DeltaNet needle contribution (a traced run with needle spans), the needle sweep's
length x depth heatmaps (`needle_sweep`), the state-capacity curves (`state_capacity`) and the layer-ablation
intervention (`layer_ablation`)."""

import streamlit as st

from workbench.analysis.long_context import (CAPACITY_VALUES, SWEEP_VALUES, ablation_results, capacity_grid,
                                             model_grid, needle_by_layer, sweep_grid)
from workbench.app.figures.long_context import (ablation_figure, capacity_accuracy_figure, capacity_heatmaps,
                                                needle_by_layer_figure)
from workbench.app.figures.views import sweep_heatmap, sweep_heatmaps
from workbench.app.state import query, require_run, show

st.title("Long context")
db, manifest, scope = require_run()
tables = set(manifest.get("tables", []))


def has(table: str) -> bool:
    return table in tables and db.has(table)


def two_columns(figures, name: str) -> None:
    columns = st.columns(2)
    for index, figure in enumerate(figures):
        with columns[index % 2]:
            show(figure, f"{name} {index}")


if has("deltanet_contribution") or (has("attention") and has("spans")):
    st.subheader("Needle: needle mass beside DeltaNet contribution")
    st.caption("Attention layers: needle mass, the head's attention weight on the span from the analysed query rows "
               "at or after the span's end, mean over those rows; the bar is the max head (named on hover). DeltaNet "
               "layers: norm of the span's part of the layer's output over the output's norm, and its signed "
               "projection (parts can cancel), mean over rows and heads.")
    span = st.text_input("Span", value="needle", key="long_context_span")
    show(needle_by_layer_figure(query(needle_by_layer, scope, span), span), "needle by layer")

if has("needle_sweep"):
    st.subheader("Needle sweep: context length x needle depth")
    value = st.radio("Measure", list(SWEEP_VALUES), format_func=SWEEP_VALUES.get, horizontal=True, key="sweep_value")
    grid = query(sweep_grid, scope, value)
    if grid.empty:
        st.info(f"No layer of this run has {SWEEP_VALUES[value]} (null where it does not apply).")
    elif value == "exact_match":  # a model-level outcome: one grid, not one copy per layer
        show(sweep_heatmap(model_grid(grid), "Exact-match accuracy (model)", SWEEP_VALUES[value], 1.0),
             "sweep exact match")
    else:
        zmax = 1.0 if value in ("exact_match", "needle_mass") else None
        if value == "needle_mass":
            st.caption("Needle mass at the rows that predict the answer, mean over them and the cell's prompts; each "
                       "cell shows the max head (h<i>), the one with the highest mass.")
        two_columns(sweep_heatmaps(grid, SWEEP_VALUES[value], zmax=zmax), f"sweep {value}")

if has("state_capacity"):
    st.subheader("State capacity: retention of planted keys as more keys are written")
    value = st.radio("Measure", list(CAPACITY_VALUES), format_func=CAPACITY_VALUES.get, horizontal=True,
                     key="capacity_value")
    grid = query(capacity_grid, scope, value)
    show(capacity_accuracy_figure(grid), "capacity accuracy")
    two_columns(capacity_heatmaps(grid, CAPACITY_VALUES[value]), f"capacity {value}")

if has("layer_ablation"):
    st.subheader("Layer ablation (an intervention, not an observation)")
    st.warning("These numbers come from a modified model: the chosen layers' token-mixer outputs were replaced by "
               "zero or by their mean over the sequence while the prompts ran (the model was restored afterwards).")
    results = query(ablation_results, scope)
    for suite in dict.fromkeys(results.suite):
        show(ablation_figure(results, suite), f"ablation {suite}")

if not has("needle_sweep"):
    st.info("This run has no `needle_sweep` table yet. `probes/needle_sweep.py`, `probes/state_capacity.py` and "
            "`probes/layer_ablation.py` write `needle_sweep`, `state_capacity` and `layer_ablation`; a trace with "
            "--attention --deltanet of prompts with a `needle` span shows needle mass beside DeltaNet "
            "contribution; `workbench schema` lists the columns.")
