"""Columns of the attention kind's tables: `attention` (per analysed query row, full-attention layer, head) and
`attention_gate` (per token and layer)."""

from __future__ import annotations

import pyarrow as pa

from ...trace.column import POSITION, SEQ_ID, Column

SPAN_MASS_TYPE = pa.list_(pa.struct([pa.field("span", pa.string()), pa.field("mass", pa.float32())]))

ATTENTION_COLUMNS = (
    SEQ_ID,
    Column(
        "position",
        pa.int32(),
        "Query token position q of the analysed row: every attention_stride-th token (positions N-1, 2N-1, ...), "
        "the last token, and tokens of query spans.",
    ),
    Column("layer", pa.int16(), "Decoder-layer index of the full-attention layer."),
    Column("head", pa.int16(), "Query head, 0-based; it reads key/value head head // (Hq / Hkv) (GQA)."),
    Column(
        "span_mass",
        SPAN_MASS_TYPE,
        "Per span of the sequence, {span: name, mass: attention weight summed over the span's key tokens (0..1)} "
        "(keys after q count 0). In `Trace.duckdb()` views it is a MAP: span_mass['needle']. Needle mass = its mean "
        "over the analysed rows at or after the span's end_token, per (layer, head) (workbench.analysis.needle).",
    ),
    Column(
        "topk_positions",
        pa.list_(pa.int32()),
        "Key positions of the k most-attended tokens, heaviest first; -1 pads rows with fewer than k keys (q < k-1).",
    ),
    Column("topk_weights", pa.list_(pa.float32()), "Attention weights of topk_positions (0 at padding), in (0, 1]."),
    Column("entropy", pa.float32(), "Entropy of the row's attention over keys 0..q, in nats, in [0, ln(q+1)]."),
    Column("sink_mass", pa.float32(), "Attention weight on token 0 (the attention sink), 0..1."),
    Column(
        "mean_distance",
        pa.float32(),
        "Mean distance attended, sum_j p_j (q - j), in tokens, in [0, q]; q/2 for uniform attention.",
    ),
)

ATTENTION_GATE_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index of the full-attention layer."),
    Column(
        "gate_mean",
        pa.float16(),
        "Output gate g = sigmoid(gate) (gate = second half of each head's q_proj output) averaged over heads and "
        "head dims, in (0, 1). The head's attention output is multiplied by g before o_proj: 0 silences it.",
    ),
    Column("gate_low_fraction", pa.float16(), "Fraction of (head, dim) gate entries with g < 0.1, 0..1."),
    Column("head_gate_mean", pa.list_(pa.float16()), "Per query head: g averaged over the head dim, in (0, 1)."),
    Column("head_gate_low_fraction", pa.list_(pa.float16()), "Per query head: fraction of the head dim with g < 0.1."),
)

