"""Attention recall: span (needle) mass per layer x head, one query's attention over positions, output gates,
retrieval-head scores. Reads the tables `workbench trace --attention` and probes/retrieval_heads.py write."""

import pandas as pd
import pyarrow.compute as pc
import streamlit as st

from data import choose_run, read_table
from figures_attention import gate_heatmap, query_attention_figure, retrieval_heatmap, span_mass_heatmap
from workbench.analysis.attention import head_gate_summary, head_span_mass, query_topk, span_names
from workbench.analysis.retrieval import top_retrieval_heads

RECALL_TABLES = ("attention", "attention_gate", "retrieval")

st.title("Attention recall")
path, manifest = choose_run(RECALL_TABLES, "workbench trace --attention",
                            "No run in this folder holds attention tables: trace with `workbench trace --attention` "
                            "or run `probes/retrieval_heads.py`.")
run_id = manifest["run_id"]
tables = set(manifest["tables"])
spans = read_table(path, "spans", run_id) if "spans" in tables else None

if "attention" in tables:
    attention = read_table(path, "attention", run_id)
    tokens = read_table(path, "tokens", run_id, ("seq_id", "position", "token"))
    names = span_names(spans) if spans is not None else []
    st.subheader("Attention mass on a span, per layer and head")
    if names:
        span = st.selectbox("Span", names, index=names.index("needle") if "needle" in names else 0)
        mass = head_span_mass(attention, spans, span)
        if mass.empty:
            st.info(f"No analysed query comes after span '{span}'.")
        else:
            st.plotly_chart(span_mass_heatmap(mass, span), width="stretch")
            best = mass.sort_values("mass", ascending=False).iloc[0]
            st.caption(f"Mean over {int(mass.rows.sum())} (query, head) rows after the span. Highest: layer "
                       f"{int(best['layer'])} head {int(best['head'])} at {best['mass']:.3f}.")
    else:
        st.info("This run's prompts name no spans (add `spans: [{name, start, end}]` to the prompts file).")

    st.subheader("One query's attention over positions")
    seq_ids = [p["id"] for p in manifest["prompts"]]
    left, middle, right = st.columns(3)
    seq_id = left.selectbox("Sequence", seq_ids)
    seq_rows = attention.filter(pc.equal(attention["seq_id"], seq_id))
    layers = sorted(set(seq_rows["layer"].to_pylist()))
    positions = sorted(set(seq_rows["position"].to_pylist()))
    layer = middle.selectbox("Layer", layers)
    position = right.selectbox("Query position", positions, index=len(positions) - 1)
    topk = query_topk(attention, seq_id, position, layer)
    seq_tokens = tokens.filter(pc.equal(tokens["seq_id"], seq_id)).to_pandas()
    seq_spans = (spans.filter(pc.equal(spans["seq_id"], seq_id)).to_pandas() if spans is not None
                 else pd.DataFrame(columns=["span", "start_token", "end_token"]))
    st.plotly_chart(query_attention_figure(topk, seq_tokens, seq_spans, position), width="stretch")
    st.caption("Top-k keys per head as stored (--attention-topk); weights below the k-th are not kept.")

if "attention_gate" in tables:
    st.subheader("Output gate per layer and head")
    summary = head_gate_summary(read_table(path, "attention_gate", run_id))
    left, right = st.columns(2)
    left.plotly_chart(gate_heatmap(summary, "gate_mean"), width="stretch")
    right.plotly_chart(gate_heatmap(summary, "gate_low_fraction"), width="stretch")

if "retrieval" in tables:
    st.subheader("Retrieval heads")
    retrieval = read_table(path, "retrieval", run_id)
    st.plotly_chart(retrieval_heatmap(retrieval.to_pandas()), width="stretch")
    st.dataframe(top_retrieval_heads(retrieval, n=10), hide_index=True)
