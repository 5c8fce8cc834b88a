"""What the attention recorder hands on: AttentionCapture."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...ops.attention_stats import AttentionStats



@dataclass(frozen=True)
class AttentionCapture(AttentionStats):
    """Attention statistics (ops.attention_stats.AttentionStats) of one or more forward calls, stacked over the
    full-attention layers, on the CPU, with the output gates. L = full-attention layers captured, B = batch,
    Q = analysed query rows (all calls, in call order), H = query heads, T = tokens of all calls.

    layers:            [L] decoder-layer index of each full-attention layer.
    query_positions:   [Q] int64 absolute token position of each analysed row.
    span_mass, topk_pos, topk_weight, entropy, sink_mass, mean_distance: AttentionStats' fields with a leading L
                       axis ([L, B, Q, H], topk [L, B, Q, H, k]).
    gate_mean:         [L, B, T, H] fp32 mean over the head dim of sigmoid(gate), per token; None without gate.
    gate_low_fraction: [L, B, T, H] fp32 fraction of the head dim with sigmoid(gate) < 0.1; None without gate.
    """

    layers: list[int]
    gate_mean: torch.Tensor | None
    gate_low_fraction: torch.Tensor | None
