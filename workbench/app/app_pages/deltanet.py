"""DeltaNet state: state norm per layer with span markers, per-head norms, gate and half-life summaries, recall of
planted pairs and state spectra. Layers are categories: attention layers get no row."""

import streamlit as st

from workbench.analysis import deltanet
from workbench.app.figures.common import layer_label
from workbench.app.figures.deltanet import (
    gate_box_figure,
    half_life_heatmap,
    head_heatmap,
    head_state_norm_figure,
    recall_figure,
    snapshot_heatmap,
    state_norm_figure,
)
from workbench.app.state import empty_state, head_filter, query, require_run, show

st.title("DeltaNet state")
db, manifest, scope = require_run()
tables = set(manifest.get("tables", []))
if "deltanet" not in tables or not db.has("deltanet"):
    empty_state("deltanet", "trace with `workbench trace --deltanet`.", db)
    st.stop()
prompts = [p["id"] for p in manifest["prompts"] if scope.label is None or p.get("label") == scope.label]
seq_id = st.selectbox("Sequence", prompts, key="deltanet_seq")
spans = (db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = ?",
                  [scope.run_id, seq_id]) if db.has("spans") else None)

curves = query(deltanet.state_norm_curves, scope, seq_id)
left, right = st.columns(2)
log_y = left.toggle("Log scale", value=True, key="deltanet_log")
show_max = right.toggle("Largest head too (dotted)", value=False, key="deltanet_max")
show(state_norm_figure(curves, spans, log_y, show_max), "state norm")
if not curves.empty:
    last = curves[curves.position == curves.position.max()]
    top = last.loc[last.state_norm_mean.idxmax()]
    st.caption(f"{curves.layer.nunique()} DeltaNet layers, {curves.position.max() + 1} tokens. At the last token the "
               f"largest mean state norm is {layer_label(top.layer)} ({top.state_norm_mean:.4g}).")

if "deltanet_heads" in tables:
    layers = sorted(curves.layer.unique().tolist())
    layer = st.selectbox("Layer for per-head norms", layers, format_func=layer_label, key="deltanet_head_layer")
    show(head_state_norm_figure(head_filter(query(deltanet.head_norm_curves, scope, seq_id, layer)), layer, spans),
         "state norm per head")

st.subheader("Gates: decay, write strength, half-life")
left, right = st.columns(2)
with left:
    show(gate_box_figure(query(deltanet.gate_quantiles, scope, "decay_mean"), "decay_mean"), "decay")
with right:
    show(gate_box_figure(query(deltanet.gate_quantiles, scope, "beta_mean"), "beta_mean"), "beta")
if "deltanet_head_summary" in tables:
    summary = head_filter(query(deltanet.head_summary, scope))
    show(half_life_heatmap(summary), "half-life per head")
    left, right = st.columns(2)
    with left:
        show(head_heatmap(summary, "decay_mean", "Mean decay per layer and head", "exp(g)"), "decay per head")
    with right:
        show(head_heatmap(summary, "beta_mean", "Mean beta per layer and head", "beta"), "beta per head")
    if not summary.empty:
        longest = summary.loc[summary.half_life.idxmax()]
        st.caption(f"Longest memory: {layer_label(longest.layer)} head {int(longest['head'])}, half-life "
                   f"{longest.half_life:.4g} tokens (ln 2 / -(token-weighted mean log decay)).")
else:
    empty_state("deltanet_head_summary", "trace with `workbench trace --deltanet`.")

st.subheader("State recall of planted pairs")
recall = query(deltanet.recall_curves, scope, seq_id) if "state_recall" in tables else None
if recall is None or recall.empty:
    st.info("No planted pair in this sequence: name a prompt span `needle` (spans: [{name, start, end}]) to measure "
            "how well each layer's state still returns the needle's value.")
else:
    metric = st.radio("Measure", list(deltanet.RECALL_MEASURES), horizontal=True, key="recall_measure",
                      help="Retention compares the readout S_t^T k with the one right after the key's own write, so "
                           "it measures forgetting alone; rel_err and cos compare with the raw v, which one delta-rule "
                           "write never returns exactly (they mix write strength beta with retention).")
    show(recall_figure(recall, metric), "state recall")

if "state_snapshots" in tables:
    snapshots = head_filter(query(deltanet.snapshot_heads, scope, seq_id))
    positions = sorted(snapshots.position.unique().tolist())
    if positions:
        st.subheader("State spectrum at snapshot positions")
        position = st.selectbox("Position", positions, index=len(positions) - 1)
        show(snapshot_heatmap(snapshots, position), "effective rank")
