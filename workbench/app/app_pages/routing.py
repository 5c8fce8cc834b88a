"""Routing & sparsity: load and balance per layer, router confidence, load by prompt label, load drift over
positions, vocabulary specialisation, co-activation and layer-to-layer transitions."""

import streamlit as st

from workbench.analysis import balance, routing, routing_structure
from workbench.analysis.facts import run_facts
from workbench.app.figures.common import layer_label, quantile_boxes
from workbench.app.figures.routing import (
    balance_figure,
    coactivation_heatmap,
    drift_heatmap,
    expert_load_heatmap,
    expert_share_figure,
    histogram_figure,
    label_divergence_heatmap,
    label_load_figure,
)
from workbench.app.state import empty_state, query, require_run, show

st.title("Routing & sparsity")
db, manifest, scope = require_run()
if not db.has("routing") or "routing" not in manifest.get("tables", []):
    empty_state("routing", "trace with `workbench trace` (routing is always captured for MoE models).", db)
    st.stop()
facts = run_facts(manifest)
experts, mtp = facts.num_experts, facts.mtp_layers
load = query(routing.expert_load, scope, experts)
if load.empty:
    st.info("No routing rows match the sidebar filters.")
    st.stop()
layers = sorted(load.layer.unique().tolist())
show(expert_load_heatmap(load, mtp), "expert load")
table = balance.load_balance(load)
worst = table.sort_values("cv", ascending=False).iloc[0]
st.caption(f"Least balanced: {layer_label(worst.layer, mtp)} (CV {worst.cv:.2f}, busiest expert "
           f"{worst.max_over_mean:.1f}x the mean, {int(worst.unused)} of {int(worst.experts)} experts never chosen).")
show(balance_figure(table, mtp), "load balance")
if mtp and not set(mtp) & set(layers):
    st.caption("The MTP layer's routing is left out of these per-layer figures; pick MTP under Layers in the sidebar "
               "to add it.")
with st.expander("Balance table"):
    st.dataframe(table, hide_index=True)

st.subheader("Router confidence per layer")
cols = st.columns(2)
for index, (metric, title) in enumerate(routing.ROUTER_METRICS.items()):
    quantiles = query(routing.metric_quantiles, scope, metric)
    with cols[index % 2]:
        if quantiles.empty:
            st.info(f"No {title} in this run (null for models without it).")
        else:
            show(quantile_boxes(quantiles, f"{title} per token", title, mtp, share=metric in routing.SHARE_METRICS),
                 f"router {metric}")

with st.expander("Histograms per layer"):
    metric = st.selectbox("Metric", list(routing.ROUTER_METRICS), format_func=routing.ROUTER_METRICS.get,
                          key="histogram_metric")
    title = routing.ROUTER_METRICS[metric]
    show(histogram_figure(query(routing.metric_histogram, scope, metric, 40), f"{title}: histogram per layer", title,
                          mtp), "router histogram")

st.subheader("Load by prompt label")
by_label = query(routing.load_by_label, scope, experts)
if by_label.label.nunique() < 2:
    st.info("One prompt label only: label divergence needs prompts with at least two labels.")
else:
    show(label_divergence_heatmap(balance.label_divergence(by_label), mtp), "label divergence")
    layer = st.selectbox("Layer for the label loads", layers, format_func=facts.label, key="label_layer")
    show(label_load_figure(by_label, layer, mtp_layers=mtp), "load by label")

st.subheader("Load drift over positions")
bucket = st.select_slider("Position bucket (tokens)", [16, 32, 64, 128, 256, 512, 1024], value=256)
show(drift_heatmap(balance.drift_divergence(query(routing.load_drift, scope, bucket, experts), min_share=0.1), mtp),
     "load drift")
st.caption("Buckets with fewer than 10% of the fullest bucket's tokens are left out (their load diverges by chance).")

st.subheader("One layer's structure")
layer = st.selectbox("Layer", layers, format_func=facts.label, key="structure_layer")
left, right = st.columns(2)
with left:
    vocab = query(routing_structure.vocab_specialisation, scope, layer, 3)
    st.markdown("**Vocabulary specialisation** (tokens seen at least 3 times; top_share 1 = always the same top-1 "
                "expert)")
    st.dataframe(vocab.head(200), hide_index=True, height=260)
    if not vocab.empty:
        choices = vocab.head(200)
        token_id = st.selectbox("Token", choices.token_id.tolist(),
                                format_func=dict(zip(choices.token_id, choices.token)).get)
        token = dict(zip(choices.token_id, choices.token))[token_id]
        show(expert_share_figure(query(routing_structure.token_experts, scope, layer, int(token_id)), token, layer,
                                 mtp_layers=mtp), "experts of a token")
with right:
    counts, joint = query(routing_structure.coactivation, scope, layer, experts)
    order = routing_structure.clustered_order(counts, joint, max_experts=512)
    show(coactivation_heatmap(counts, joint, order, layer, mtp), "co-activation")
    st.markdown("**Top co-activated pairs** P(j in top-k | i in top-k), experts i chosen at least 10 times")
    st.dataframe(routing_structure.coactivation_pairs(counts, joint, top=15, min_count=10), hide_index=True)
following = [x for x in layers if x > layer]
if following:
    st.markdown(f"**Top-1 transitions** {facts.label(layer)} -> {facts.label(following[0])} (same tokens)")
    st.dataframe(query(routing_structure.layer_transitions, scope, layer, following[0], 15), hide_index=True)
