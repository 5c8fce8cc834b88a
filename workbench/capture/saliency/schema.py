"""Columns of the expert_saliency kind's tables."""

from __future__ import annotations

import pyarrow as pa

from ...trace.column import MOE_LAYER, SEQ_ID, Column

# One row per (sequence, MoE layer, routed expert chosen at least once) in `expert_saliency`, per (sequence, MoE
# layer) in `shared_expert_share`.
EXPERT_SALIENCY_COLUMNS = (
    SEQ_ID,
    MOE_LAYER,
    Column("expert", pa.int16(), "Routed expert id in [0, E)."),
    Column("count", pa.int32(), "Tokens of the sequence routed to the expert (top-k selections), >= 1."),
    Column("gate_mean", pa.float32(), "Mean gate weight w the expert's output was mixed with, over its tokens, 0..1."),
    Column("output_norm_mean", pa.float32(), "Mean ||e(x)||_2 of the expert's own (unweighted) output over its "
           "tokens, units of the hidden state."),
    Column("reap", pa.float32(), "REAP score: mean over its tokens of w x ||e(x)||_2 (router gate times expert output "
           "norm), units of the hidden state. Aggregate over sequences weighted by count."),
)
SHARED_EXPERT_SHARE_COLUMNS = (
    SEQ_ID,
    MOE_LAYER,
    Column("tokens", pa.int32(), "Tokens of the sequence."),
    Column("share_mean", pa.float32(), "Mean over tokens of ||c|| / (||c|| + ||r||), 0..1: c = sigmoid(shared gate) x "
           "shared-expert output, r = the routed experts' weighted sum (the MoE output is c + r)."),
    Column("shared_norm_mean", pa.float32(), "Mean ||c||_2 over tokens, units of the hidden state."),
    Column("routed_norm_mean", pa.float32(), "Mean ||r||_2 over tokens, units of the hidden state."),
)
