"""What the routing recorder hands on: RoutingCapture."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RoutingCapture:
    """Routing of one forward pass, on the CPU. L = number of MoE layers captured, N = batch x tokens
    (row-major: token t of sequence b is row b*T + t), k = experts per token, E = experts.

    layers:         [L] decoder-layer index of each captured MoE layer.
    topk_ids:       [L, N, k] int16 expert ids (int32 past 32,767 experts), in the router's order (descending
                    probability for softmax routers; sigmoid routers return them unsorted).
    topk_weights:   [L, N, k] fp32 weights the experts' outputs are mixed with (renormalised when the
                    config says norm_topk_prob; sigmoid routers also scale by routed_scaling_factor).
    router_entropy, topk_mass, topk_margin: [L, N] fp32 (see ops.router_stats: which probabilities).
    shared_gate:    [L, N] fp32 sigmoid(shared_expert_gate(x)) in (0, 1); NaN where a layer has none.
    router_logits:  [L, N, E] or None when not requested.
    """

    layers: list[int]
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor
    router_entropy: torch.Tensor
    topk_mass: torch.Tensor
    topk_margin: torch.Tensor
    shared_gate: torch.Tensor
    router_logits: torch.Tensor | None
