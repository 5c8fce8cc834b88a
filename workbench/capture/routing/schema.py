"""Columns of the routing kind's tables: `routing` (per sequence, token, MoE layer) and `router_logits`."""

from __future__ import annotations

import pyarrow as pa

from ...trace.column import POSITION, SEQ_ID, Column

ROUTING_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index (0-based) of the MoE block."),
    Column(
        "topk_ids",
        pa.list_(pa.uint16()),
        "The k experts the router chose, in the router's order (descending probability); ids in [0, E).",
    ),
    Column(
        "topk_weights",
        pa.list_(pa.float16()),
        "Weights mixing the chosen experts' outputs, same order as topk_ids; in [0, 1], summing to 1 when "
        "the config renormalises (norm_topk_prob). float16: absolute error <= 2.5e-4.",
    ),
    Column(
        "router_entropy",
        pa.float16(),
        "Entropy of softmax(router logits) over all E experts, in nats, in [0, ln E]. Low = confident router.",
    ),
    Column(
        "topk_mass",
        pa.float16(),
        "Sum of the chosen experts' probabilities before renormalisation, in (0, 1]: how much of the "
        "router's distribution the top-k covers.",
    ),
    Column(
        "topk_margin",
        pa.float16(),
        "p_(k) - p_(k+1): probability of the k-th chosen expert minus the best expert left out, >= 0. "
        "Near 0 = the last routing decision was a near tie.",
    ),
    Column(
        "shared_gate",
        pa.float16(),
        "sigmoid(shared_expert_gate(x)) in (0, 1): how much of the shared expert's output is added. "
        "Null for models without a gated shared expert.",
        True,
    ),
)

ROUTER_LOGITS_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index of the MoE block."),
    Column(
        "router_logits",
        pa.list_(pa.float16()),
        "Pre-softmax router scores for all E experts (only written when asked: E x 2 bytes per row).",
    ),
)
