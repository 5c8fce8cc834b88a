"""Expert routing: load per layer (layer x expert heatmap) and each token's top-k experts for a sequence."""

import streamlit as st

from data import choose_run, read_table
from figures import expert_load_heatmap, token_topk_figure
from workbench.analysis.routing import expert_load, sequence_routing, topk_long

st.title("Expert routing")
path, manifest = choose_run(("routing",), "workbench trace", "This trace folder holds no run with routing yet.")
run_id = manifest["run_id"]
num_experts = manifest["model"]["config"].get("num_experts")  # None: expert_load takes the largest id seen

routing = read_table(path, "routing", run_id, ("seq_id", "position", "layer", "topk_ids", "topk_weights", "router_entropy"))
tokens = read_table(path, "tokens", run_id, ("seq_id", "position", "token", "label"))

st.subheader("Expert load per layer")
load = expert_load(routing, num_experts)
st.plotly_chart(expert_load_heatmap(load), width="stretch")
busiest = load.sort_values("fraction", ascending=False).head(1)
st.caption(
    f"{routing.num_rows} (token, layer) rows. Uniform load would be {1 / load.expert.nunique():.4f} per expert; "
    f"the busiest slot is expert {int(busiest.expert.iloc[0])} on layer {int(busiest.layer.iloc[0])} "
    f"at {busiest.fraction.iloc[0]:.4f}."
)

st.subheader("Top-k experts per token")
seq_ids = [p["id"] for p in manifest["prompts"]]
left, right = st.columns(2)
seq_id = left.selectbox("Sequence", seq_ids)
layer = right.selectbox("Layer", manifest["moe_layers"])
frame = sequence_routing(routing, tokens, seq_id, layer)
if len(frame) > 1:
    window = st.slider("Positions", 0, len(frame) - 1, (0, min(len(frame) - 1, 255)))
    frame = frame[(frame.position >= window[0]) & (frame.position <= window[1])]
st.plotly_chart(token_topk_figure(topk_long(frame), frame[["position", "token"]]), width="stretch")
