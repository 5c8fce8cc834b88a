"""Token explorer: a sequence's text coloured by a per-token metric at a chosen layer, details on hover."""

import streamlit as st

from workbench.analysis import tokens
from workbench.analysis.facts import run_facts
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
    st.info(f"No sequence of this run has label {scope.label!r}." if scope.label else "This run holds no sequence.")
    st.stop()
left, middle, right = st.columns(3)
seq_id = left.selectbox("Sequence", prompts, key="explorer_seq")
metric = middle.selectbox("Metric", available, key="explorer_metric")
layers = tokens.metric_layers(db, scope, metric)
picked = st.session_state.get("layers") or []  # one layer at a time, not an aggregate: the MTP layer is offered too
if picked:
    layers = [x for x in layers if x in picked] or layers
facts = run_facts(manifest)
layer = right.selectbox("Layer", layers, format_func=facts.label, key="explorer_layer")
frame = tokens.token_metric(db, scope_of(scope.run_id), seq_id, layer, metric)
if frame.empty:
    st.info("No tokens of this sequence in the sidebar's position window.")
    st.stop()
first, last = int(frame.position.min()), int(frame.position.max()) + 1
spans = (db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = ? "
                  "AND end_token > start_token ORDER BY start_token", [scope.run_id, seq_id])  # cut spans are empty
         if db.has("spans") else None)
start = first
if spans is not None and len(spans):  # open on the first span (the needle), with some context before it
    start = min(max(first, int(spans.start_token.iloc[0]) - 64), max(first, last - 384))
window = st.slider("Tokens shown [from, to)", first, last, (start, min(last, start + 384)), key=f"explorer_{seq_id}")
shown = frame[(frame.position >= window[0]) & (frame.position < window[1])]
named = ", ".join(f"{r.span} [{r.start_token}, {r.end_token})" for r in spans.itertuples()) if spans is not None \
    and len(spans) else "none"
st.caption(f"{tokens.TOKEN_METRICS[metric][2]}; grey = no value at that token (e.g. tokens that were not analysed "
           f"attention queries). Spans (outlined in the grid): {named}.")
show(token_strip_figure(shown, metric, layer, spans=spans, mtp_layers=facts.mtp_layers), "token explorer")
