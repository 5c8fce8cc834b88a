"""Token explorer: a sequence's text coloured by a per-token metric at a chosen layer, details on hover."""

import streamlit as st

from workbench.analysis import tokens
from workbench.app.figures.common import layer_label
from workbench.app.figures.views import token_strip_figure
from workbench.app.state import require_run, scope_of, show

st.title("Token explorer")
db, manifest, scope = require_run()
if not db.has("tokens"):
    st.info("This trace has no `tokens` table: trace a run with `workbench trace`.")
    st.stop()
available = [m for m, (table, _, _) in tokens.TOKEN_METRICS.items() if db.has(table)]
if not available:
    st.info("This run has no routing, deltanet or attention table to colour tokens by.")
    st.stop()
prompts = [p["id"] for p in manifest["prompts"] if scope.label is None or p.get("label") == scope.label]
if not prompts:
    st.info(f"No sequence has label {scope.label!r}.")
    st.stop()
left, middle, right = st.columns(3)
seq_id = left.selectbox("Sequence", prompts, key="explorer_seq")
metric = middle.selectbox("Metric", available, key="explorer_metric")
layers = tokens.metric_layers(db, scope, metric)
if scope.layers:
    layers = [x for x in layers if x in scope.layers] or layers
layer = right.selectbox("Layer", layers, format_func=layer_label, key="explorer_layer")
seq_scope = scope_of(scope.run_id)
frame = tokens.token_metric(db, seq_scope, seq_id, layer, metric)
st.caption(f"{tokens.TOKEN_METRICS[metric][2]}; grey = no value at that token "
           f"(e.g. tokens that were not analysed attention queries).")
show(token_strip_figure(frame.head(2048), metric, layer), "token explorer")
if len(frame) > 2048:
    st.caption(f"First 2,048 of {len(frame)} tokens in the window: narrow the sidebar's positions to see the rest.")
