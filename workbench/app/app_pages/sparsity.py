"""Sparsity probes: expert saliency (--expert-saliency), routing specialisation against a random init
(probes/routing_specialization.py) and the prune what-if curves (probes/expert_pruning.py, an intervention)."""

import streamlit as st

from workbench.analysis.sparsity import (expert_saliency, label_js_by_layer, label_top_experts, pruning_curves,
                                         shared_expert_share, vocab_fixedness)
from workbench.app.figures.sparsity import label_js_figure, pruning_figure, saliency_heatmap, shared_share_figure
from workbench.analysis.balance import MIN_LIFT_SUPPORT
from workbench.analysis.facts import run_facts
from workbench.app.state import empty_state, query, require_run, show

st.title("Sparsity probes")
db, manifest, scope = require_run()
tables = set(manifest.get("tables", []))
shown = False
if "expert_saliency" in tables and db.has("expert_saliency"):
    shown = True
    st.subheader("Expert saliency")
    value = st.radio("Colour", ["reap", "count", "gate_mean", "output_norm_mean"], horizontal=True, key="saliency_value")
    show(saliency_heatmap(query(expert_saliency, scope), value, run_facts(manifest).num_experts),
         f"expert saliency {value}")
    if "shared_expert_share" in tables and db.has("shared_expert_share"):
        show(shared_share_figure(query(shared_expert_share, scope)), "shared expert share")
if "label_divergence" in tables and db.has("label_divergence"):
    shown = True
    st.subheader("Routing specialisation by label")
    show(label_js_figure(query(label_js_by_layer, scope)), "label js trained vs random")
    st.caption(f"Each label's most over-represented experts (lift = the label's share / the share over all labels), "
               f"among experts with at least {MIN_LIFT_SUPPORT:.0%} of the label's top-k slots (the support: below "
               f"it, an expert chosen a handful of times tops the ranking on chance):")
    st.dataframe(query(label_top_experts, scope), hide_index=True)
    st.caption("Vocabulary specialisation: share of tokens whose top-1 expert is the same in >= 90% of occurrences:")
    st.dataframe(query(vocab_fixedness, scope), hide_index=True)
if "expert_pruning" in tables and db.has("expert_pruning"):
    shown = True
    st.subheader("Prune what-if (an intervention: routers never choose the masked experts)")
    curves = query(pruning_curves, scope)
    show(pruning_figure(curves, "accuracy"), "pruning accuracy")
    show(pruning_figure(curves, "loss"), "pruning loss")
    st.dataframe(curves, hide_index=True)
elsewhere = {table: [m["run_id"] for m in db.trace.manifests() if table in m.get("tables", [])]
             for table in ("expert_saliency", "label_divergence", "expert_pruning") if table not in tables}
elsewhere = {table: runs for table, runs in elsewhere.items() if runs}
if shown and elsewhere:
    st.caption("Other runs hold more of this page (pick one in the sidebar): "
               + "; ".join(f"{table}: {', '.join(runs)}" for table, runs in elsewhere.items()))
if not shown:
    empty_state("expert_saliency", "trace with `--expert-saliency`, or run probes/routing_specialization.py or "
                "probes/expert_pruning.py (tables label_divergence, expert_pruning).", db)
