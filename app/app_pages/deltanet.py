"""DeltaNet state: per-token state norm per layer (heads as a band, or per head), decay/beta distributions,
a layer x head half-life heatmap, recall curves of planted pairs and state spectra. Reads the tables
`workbench trace --deltanet` writes."""

import pyarrow.compute as pc
import streamlit as st

from data import choose_run, read_table
from figures_deltanet import (
    gate_box_figure,
    half_life_heatmap,
    head_state_norm_figure,
    layer_head_heatmap,
    recall_figure,
    state_norm_figure,
)
from workbench.analysis.deltanet import (
    head_summary,
    heads_long,
    layer_head_matrix,
    recall_curves,
    sequence_state,
    snapshot_matrix,
)

st.title("DeltaNet state")
path, manifest = choose_run(("deltanet",), "workbench trace --deltanet",
                            "No run in this folder holds DeltaNet state: trace with `workbench trace --deltanet`.")
run_id = manifest["run_id"]
tables = set(manifest["tables"])
seq_id = st.selectbox("Sequence", [p["id"] for p in manifest["prompts"]])

state = sequence_state(read_table(path, "deltanet", run_id), seq_id)
layers = sorted(state.layer.unique().tolist())
st.subheader("State norm per layer")
shown = st.multiselect("Layers", layers, default=layers)
st.plotly_chart(state_norm_figure(state[state.layer.isin(shown)]), width="stretch")
last = state[state.position == state.position.max()]
st.caption(f"{len(layers)} DeltaNet layers, {state.position.max() + 1} tokens. At the last token the largest mean "
           f"state norm is layer {int(last.loc[last.state_norm_mean.idxmax(), 'layer'])} "
           f"({last.state_norm_mean.max():.4g}).")

heads = heads_long(read_table(path, "deltanet_heads", run_id), seq_id) if "deltanet_heads" in tables else None
if heads is not None and not heads.empty:
    st.subheader("State norm per head")
    layer = st.selectbox("Layer", sorted(heads.layer.unique().tolist()))
    st.plotly_chart(head_state_norm_figure(heads[heads.layer == layer]), width="stretch")

st.subheader("Gates: decay and write strength")
left, right = st.columns(2)
left.plotly_chart(gate_box_figure(state, "decay_mean", "Decay exp(g), mean over heads, per token"), width="stretch")
right.plotly_chart(gate_box_figure(state, "beta_mean", "Write strength beta, mean over heads, per token"),
                   width="stretch")
if "deltanet_head_summary" in tables:
    summary = head_summary(read_table(path, "deltanet_head_summary", run_id), seq_id)
    st.plotly_chart(half_life_heatmap(layer_head_matrix(summary, "half_life")), width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(layer_head_heatmap(layer_head_matrix(summary, "decay_mean"), "Mean decay per layer and head",
                                         "exp(g)"), width="stretch")
    right.plotly_chart(layer_head_heatmap(layer_head_matrix(summary, "beta_mean"), "Mean beta per layer and head",
                                          "beta"), width="stretch")
    longest = summary.loc[summary.half_life.idxmax()]
    st.caption(f"Longest memory: layer {int(longest.layer)} head {int(longest['head'])}, half-life "
               f"{longest.half_life:.4g} tokens; half-life = ln 2 / -(mean log decay) over the sequence.")

st.subheader("State recall of planted pairs")
recall = read_table(path, "state_recall", run_id) if "state_recall" in tables else None
curves = recall_curves(recall, seq_id) if recall is not None else None
if curves is None or curves.empty:
    st.info("No planted pair in this sequence: name a prompt span `needle` (spans: [{name, start, end}]) to measure "
            "how well each layer's state still returns the needle's value.")
else:
    metric = st.radio("Measure", ["rel_err_mean", "rel_err_min", "cos_mean", "cos_max"], horizontal=True)
    st.plotly_chart(recall_figure(curves, metric), width="stretch")

snapshots = read_table(path, "state_snapshots", run_id) if "state_snapshots" in tables else None
if snapshots is not None:
    positions = sorted(set(snapshots.filter(pc.equal(snapshots["seq_id"], seq_id))["position"].to_pylist()))
    if positions:
        st.subheader("State spectrum at snapshot positions")
        position = st.selectbox("Position", positions, index=len(positions) - 1)
        st.plotly_chart(layer_head_heatmap(snapshot_matrix(snapshots, seq_id, position), "Effective rank of S_t",
                                           "effective rank"), width="stretch")
