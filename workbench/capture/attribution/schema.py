"""Columns of the attribution kind's table."""

from __future__ import annotations

import pyarrow as pa

from ...trace.column import SEQ_ID, Column

# One row per (sequence, attributed position, component).
LOGIT_ATTRIBUTION_COLUMNS = (
    SEQ_ID,
    Column("position", pa.int32(), "Position p whose output logits are attributed (the target is the token that "
           "follows p: in span mode the span's token p + 1)."),
    Column("target_token_id", pa.int32(), "The target token."),
    Column("foil_token_id", pa.int32(), "The foil token when a logit difference target - foil is attributed, else "
           "null.", True),
    Column("layer", pa.int16(), "Decoder-layer index of the component; null for the embedding.", True),
    Column("component", pa.string(), "embedding | attention_head | deltanet_head (one head of the layer's token "
           "mixer, output gate applied, through its output projection) | mixer (a mixer not split by head) | "
           "mixer_rest (the mixer's output minus its heads': a projection bias; ~0 without one) | shared_expert "
           "(gate applied) | expert (routing weight x the expert's output) | moe_rest (the MoE output minus shared and "
           "routed experts; ~0) | mlp (a dense layer's MLP)."),
    Column("head", pa.int16(), "Query head (attention) or value head (DeltaNet) of a *_head row, else null.", True),
    Column("expert", pa.int16(), "Routed expert id of an expert row, else null.", True),
    Column("routing_weight", pa.float32(), "The routing weight the expert's output was mixed with (expert rows).",
           True),
    Column("value", pa.float32(), "The component's direct contribution to the logit (or logit difference), in logits: "
           "s * (c . (g * u)), with c the component's write to the residual stream at p, u the unembedding "
           "direction (W_U[target] - W_U[foil]), g the final RMSNorm's gain and s its scale 1 / rms(h_p) taken at the "
           "actual residual h_p (the usual linearisation: s is held fixed, so the components sum exactly)."),
    Column("model_logit", pa.float32(), "The model's own logit (or logit difference) at p, from its lm_head: the "
           "values of a position sum to it within float tolerance."),
)
