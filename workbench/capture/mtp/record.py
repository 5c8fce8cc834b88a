"""What the MTP recorder hands on: MTPCapture."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..routing.record import RoutingCapture

@dataclass
class MTPCapture:
    """Draft acceptance of the MTP head, on the CPU. S = sequences (batch rows) seen, R = T - 1 rows per sequence:
    row t drafts token t+2 from the trunk's final-normed h_t and token t+1 (see workbench/mtp/acceptance.py).

    draft, trunk_next:  [S, R] int64 the MTP's argmax for x_{t+2} and the trunk's own greedy token there.
    accepted:           [S, R] bool draft == trunk_next (greedy speculative acceptance).
    draft_correct:      [S, R] int8 1/0 draft == x_{t+2}; -1 on the last row (x_{t+2} is past the sequence).
    p_accepted:         [S, R] fp32 the MTP's probability of trunk_next.
    tie:                [S, R] bool the trunk's or the head's top two logits are exactly equal (mtp.acceptance).
    mtp_layer:          layer index the MTP layer's routing rows carry (= the trunk's num_hidden_layers).
    routing:            RoutingCapture of the MTP layer (R rows per sequence), or None for a family without routers.
    """

    draft: torch.Tensor
    trunk_next: torch.Tensor
    accepted: torch.Tensor
    draft_correct: torch.Tensor
    p_accepted: torch.Tensor
    tie: torch.Tensor
    mtp_layer: int
    routing: RoutingCapture | None
