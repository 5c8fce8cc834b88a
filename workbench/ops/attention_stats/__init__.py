"""Attention-recall statistics of full-attention layers: span (needle) mass, top-k keys, entropy, sink mass,
mean attention distance, per (batch, query position, query head).

`naive_attention_stats` is the fp64 reference from full eager weights (`stats_from_weights` takes weights the
model itself returned); `blockwise_attention_stats` computes the same numbers over key blocks in O(Q * H * block)
memory, for long contexts.
"""

from .blockwise import blockwise_attention_stats
from .naive import AttentionStats, Span, causal_attention_weights, naive_attention_stats, stats_from_weights

__all__ = [
    "AttentionStats",
    "Span",
    "blockwise_attention_stats",
    "causal_attention_weights",
    "naive_attention_stats",
    "stats_from_weights",
]
