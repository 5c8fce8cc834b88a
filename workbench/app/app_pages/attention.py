"""Attention recall: span (needle) mass per layer x head, one query's attention over positions (opening on the
prompt's `query: true` span), sink and entropy, output gates, retrieval-head scores."""

import streamlit as st

from workbench.analysis import attention, needle
from workbench.app.figures.attention import (
    entropy_heatmap,
    gate_heatmap,
    query_attention_figure,
    retrieval_heatmap,
    sink_heatmap,
    span_mass_heatmap,
)
from workbench.app.figures.common import layer_label
from workbench.app.state import head_filter, query, require_run, show

st.title("Attention recall")
db, manifest, scope = require_run()
tables = set(manifest.get("tables", []))
if not tables & {"attention", "attention_gate", "retrieval"}:
    st.info("This run has no `attention`, `attention_gate` or `retrieval` table: trace with "
            "`workbench trace --attention` or run `probes/retrieval_heads.py`.")
    st.stop()

if "attention" in tables:
    names = attention.span_names(db, scope)
    st.subheader("Needle mass on a span, per layer and head")
    if names:
        span = st.selectbox("Span", names, index=names.index("needle") if "needle" in names else 0, key="attn_span")
        mass = head_filter(query(needle.needle_mass, scope, span))
        show(span_mass_heatmap(mass, span), "span mass")
        if not mass.empty:
            best = needle.max_head(mass).sort_values("mass", ascending=False).iloc[0]
            stride = manifest.get("capture", {}).get("attention_stride")
            rows = f"every {stride}th row and the query span" if stride else "the query span"
            st.caption(f"Needle mass: the head's attention weight on '{span}' from the analysed query rows at or after "
                       f"the span's end ({rows}), mean over those rows ({int(mass.rows.max())} per head here). Max "
                       f"head: {layer_label(best['layer'])} head {int(best['head'])} at {best['mass']:.3f}.")
    else:
        st.info("This run's prompts name no spans (add `spans: [{name, start, end}]` to the prompts file).")

    st.subheader("One query's attention over positions")
    prompts = [p["id"] for p in manifest["prompts"] if scope.label is None or p.get("label") == scope.label]
    left, middle, right = st.columns(3)
    seq_id = left.selectbox("Sequence", prompts, key="attn_seq")
    positions = attention.query_positions(db, scope, seq_id)
    layers = db.frame("SELECT DISTINCT layer FROM attention WHERE run_id = ? ORDER BY layer",
                      [scope.run_id]).layer.tolist()
    if scope.layers:
        layers = [x for x in layers if x in scope.layers] or layers
    layer = middle.selectbox("Layer", layers, format_func=layer_label, key="attn_layer")
    if positions:
        default = attention.default_query(db, scope, seq_id)
        position = right.selectbox("Query position", positions, index=positions.index(default),
                                   key=f"attn_position_{seq_id}",
                                   help="Opens on the first token of the prompt's `query: true` span.")
        topk = head_filter(attention.query_topk(db, scope, seq_id, position, layer))
        tokens = db.frame("SELECT position, token FROM tokens WHERE run_id = ? AND seq_id = ?", [scope.run_id, seq_id])
        spans = db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = ?",
                         [scope.run_id, seq_id]) if db.has("spans") else tokens.iloc[0:0].assign(
                             span="", start_token=0, end_token=0)
        show(query_attention_figure(topk, tokens, spans, position), "query attention")
        st.caption("Top-k keys per head as stored (--attention-topk); weights below the k-th are not kept.")
    else:
        st.info("No analysed query row in this sequence within the sidebar's filters.")

    st.subheader("Attention sink and entropy per layer and head")
    summary = head_filter(query(attention.head_sink_entropy, scope))
    left, right = st.columns(2)
    with left:
        show(sink_heatmap(summary), "sink mass")
    with right:
        show(entropy_heatmap(summary), "attention entropy")

if "attention_gate" in tables:
    st.subheader("Output gate per layer and head")
    gates = head_filter(query(attention.head_gate_summary, scope))
    left, right = st.columns(2)
    with left:
        show(gate_heatmap(gates, "gate_mean"), "gate mean")
    with right:
        show(gate_heatmap(gates, "gate_low_fraction"), "gate closed fraction")

if "retrieval" in tables:
    st.subheader("Retrieval heads")
    scores = head_filter(query(attention.retrieval_summary, scope))
    show(retrieval_heatmap(scores), "retrieval score")
    st.dataframe(scores.head(10), hide_index=True)
