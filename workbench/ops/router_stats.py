"""Per-token summaries of a softmax top-k router, reduced on the model's device.

Everything here is a pure tensor function: the capture hooks call it, the tests check it against
transformers' own router logits. It runs inside every MoE layer's forward, so it avoids a second top-k:
p_(k) is the smallest chosen probability and p_(k+1) the largest probability left out.
"""

from __future__ import annotations

import torch


def router_token_stats(router_logits: torch.Tensor, topk_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summaries of one router call over all experts.

    router_logits: [N, E] pre-softmax scores (any float dtype; math in fp32).
    topk_ids:      [N, k] experts the router chose (its own output, so ties resolve as the model did).
    Returns fp32 tensors of shape [N]:
      router_entropy  entropy of softmax(logits) over all E experts, nats, in [0, ln E];
      topk_mass       sum of the chosen experts' probabilities before renormalisation, in (0, 1];
      topk_margin     p_(k) - p_(k+1): smallest chosen probability minus the largest one left out
                      (>= 0 for a top-k router; 0 when k == E: nothing is left out).
    """
    log_probs = torch.log_softmax(router_logits, dim=-1, dtype=torch.float32)  # [N, E]
    entropy = -torch.linalg.vecdot(log_probs.exp(), log_probs)  # [N]
    ids = topk_ids.long()
    chosen = log_probs.gather(-1, ids)  # [N, k] log-probabilities of the chosen experts
    topk_mass = chosen.exp().sum(-1)
    if ids.shape[-1] < log_probs.shape[-1]:
        left_out = log_probs.scatter(-1, ids, float("-inf")).amax(-1)  # [N]
        margin = chosen.amin(-1).exp() - left_out.exp()
    else:
        margin = torch.zeros_like(entropy)
    return {"router_entropy": entropy, "topk_mass": topk_mass, "topk_margin": margin}
