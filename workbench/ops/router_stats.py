"""Per-token summaries of a softmax top-k router, reduced on the model's device.

Everything here is a pure tensor function: the capture hooks call it, the tests call it on
transformers' own router logits.
"""

from __future__ import annotations

import torch


def router_token_stats(
    router_logits: torch.Tensor, topk_ids: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Summaries of one router call over all experts.

    router_logits: [N, E] pre-softmax scores (any float dtype; math in fp32).
    topk_ids:      [N, k] experts the router chose (its own output, so ties resolve as the model did).
    Returns fp32 tensors of shape [N]:
      router_entropy  entropy of softmax(logits) over all E experts, nats, in [0, ln E];
      topk_mass       sum of the chosen experts' probabilities before renormalisation, in (0, 1];
      topk_margin     p_(k) - p_(k+1): k-th minus (k+1)-th largest probability, >= 0
                      (0 when k == E: no expert is left out).
    """
    logits = router_logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)  # [N, E]
    probs = log_probs.exp()
    entropy = -(probs * log_probs).sum(-1)  # [N]
    topk_mass = probs.gather(-1, topk_ids.long()).sum(-1)  # [N]
    k, num_experts = topk_ids.shape[-1], probs.shape[-1]
    if k < num_experts:
        top = probs.topk(k + 1, dim=-1).values  # [N, k+1], descending
        margin = top[:, k - 1] - top[:, k]
    else:
        margin = torch.zeros_like(entropy)
    return {"router_entropy": entropy, "topk_mass": topk_mass, "topk_margin": margin}
