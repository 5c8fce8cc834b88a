"""What the expert saliency recorder hands on: ExpertSaliencyCapture."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ExpertSaliencyCapture:
    """Expert saliency sums of the forward calls since the last collect, on the CPU. L = MoE layers, E = experts.

    layers [L]; count [L, E] int64 (token, expert) selections; gate_sum, norm_sum, reap_sum [L, E] float64: sums over
    those selections of the gate weight w, of ||e(x)||_2 (the expert's unweighted output, units of the hidden state)
    and of w * ||e(x)|| (REAP). shared_tokens [L] tokens with a gated shared expert seen (0 where none);
    share_sum [L] sum over tokens of ||c|| / (||c|| + ||r||) with c the gated shared-expert output and r the routed
    experts' weighted sum; shared_norm_sum, routed_norm_sum [L] sums of ||c|| and ||r||.
    path: how the per-expert outputs were obtained, the paths that ran joined by "+": "tap" (read inside the model's
    grouped_mm forward), "grouped" or "loop" (recomputed); see capture/saliency/.
    """

    layers: list[int]
    count: torch.Tensor
    gate_sum: torch.Tensor
    norm_sum: torch.Tensor
    reap_sum: torch.Tensor
    shared_tokens: torch.Tensor
    share_sum: torch.Tensor
    shared_norm_sum: torch.Tensor
    routed_norm_sum: torch.Tensor
    path: str
