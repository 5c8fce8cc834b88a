"""Compare runs: routing agreement on the same tokens, expert-load difference, state-norm difference."""

import streamlit as st

from workbench.analysis import deltanet, routing, routing_structure
from workbench.app.figures.views import agreement_figure, load_difference_heatmap, state_difference_figure
from workbench.app.state import query, require_run, scope_of, show

st.title("Compare runs")
db, manifest, scope = require_run()
runs = db.trace.manifests()
if len(runs) < 2:
    st.info("This trace folder holds one run: append another (`workbench trace --out <same folder> ...`) to compare.")
    st.stop()
ids = [m["run_id"] for m in runs]
others = [r for r in ids if r != scope.run_id]
run_b = st.selectbox("Compare the sidebar's run (A) with run B", others, index=len(others) - 1, key="compare_run")
scope_b = scope_of(run_b)
st.caption(f"A = {scope.run_id}, B = {run_b}; tokens are matched on (sequence id, position, token id).")
if db.has("routing"):
    show(agreement_figure(query(routing_structure.run_agreement, scope, run_b)), "routing agreement")
    experts = manifest["model"].get("config", {}).get("num_experts")
    show(load_difference_heatmap(query(routing.expert_load, scope, experts), query(routing.expert_load, scope_b, experts)),
         "load difference")
else:
    st.info("No `routing` table in this trace.")
if db.has("deltanet"):
    show(state_difference_figure(query(deltanet.state_norm_difference, scope, run_b)), "state norm difference")
else:
    st.info("No `deltanet` table in this trace: trace both runs with `--deltanet` to compare state norms.")
