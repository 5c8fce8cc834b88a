"""Compare runs: routing agreement on the same tokens, expert-load difference, state-norm difference."""

import streamlit as st

from workbench.analysis import deltanet, routing, routing_structure
from workbench.analysis.facts import run_facts
from workbench.app.figures.views import agreement_figure, load_difference_heatmap, state_difference_figure
from workbench.app.state import query, require_run, scope_of, show

st.title("Compare runs")
db, manifest, scope = require_run()
runs = db.trace.manifests()
comparable = [m for m in runs if m["run_id"] != scope.run_id and {"routing", "deltanet"} & set(m.get("tables", []))]
if not comparable:
    st.info("No other run in this folder holds routing or DeltaNet tables: append one (`workbench trace --out <same "
            "folder> ...`) to compare.")
    st.stop()
own = {p["id"] for p in manifest["prompts"]}
shared = [len(own & {p["id"] for p in m["prompts"]}) for m in comparable]
default = max(range(len(comparable)), key=lambda i: (shared[i], i))  # most sequences in common, then newest
labels = {m["run_id"]: f"{m['run_id']} · {m['model']['source']} · {shared[i]} sequences in common"
          for i, m in enumerate(comparable)}
run_b = st.selectbox("Compare the sidebar's run (A) with run B", list(labels), index=default, format_func=labels.get,
                     key="compare_run")
tables_b = set(next(m for m in comparable if m["run_id"] == run_b).get("tables", []))
scope_b = scope_of(run_b)
st.caption(f"A = {scope.run_id}, B = {run_b}; tokens are matched on (sequence id, position, token id).")
if "routing" in tables_b and "routing" in manifest.get("tables", []):
    facts = run_facts(manifest)
    show(agreement_figure(query(routing_structure.run_agreement, scope, run_b), facts.mtp_layers), "routing agreement")
    experts = facts.num_experts
    load_a, load_b = query(routing.expert_load, scope, experts), query(routing.expert_load, scope_b, experts)
    show(load_difference_heatmap(load_a, load_b, facts.mtp_layers), "load difference")
else:
    st.info("Run A or B has no `routing` table.")
if "deltanet" in tables_b and "deltanet" in manifest.get("tables", []):
    show(state_difference_figure(query(deltanet.state_norm_difference, scope, run_b)), "state norm difference")
else:
    st.info("Run A or B has no `deltanet` table: trace both with `--deltanet` to compare state norms.")
