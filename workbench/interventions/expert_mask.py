"""Prune what-if: route as if some experts were removed. An INTERVENTION: the model's output changes.

`with mask_experts(model, {layer: [expert ids]}):` puts a forward hook on each named layer's router (the adapter's
RouterSite, whose forward returns (router_logits [N, E], topk_weights [N, k], topk_ids [N, k])) that replaces its
output with the routing a pruned model would compute: the masked experts' logits set to -inf, then the router's own
rule, p = softmax(logits) over all E experts (masked ones get p = 0), top-k of p, the chosen p renormalised to sum 1
when the router renormalises (`norm_topk_prob`; routers without that attribute, Mixtral's, always do). The returned
logits are the masked ones. Masking nothing reproduces the router's output bit for bit (a test compares logits).
Every hook is removed on exit and on error. Sigmoid routers (DeepSeek-V3, Kimi-Linear: grouped top-k with a
correction bias) are refused.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Mapping, Sequence

import torch

from ..adapters import adapter_for_config
from ..capture.recorder import remove_all


class ExpertMaskError(ValueError):
    """The mask cannot be applied to this model (unsupported router, unknown layer or expert, too few left)."""


def masked_routing(logits: torch.Tensor, mask: torch.Tensor, top_k: int, renormalise: bool):
    """logits [N, E], mask [E] bool (True = removed) -> (masked logits [N, E], weights [N, k] in logits' dtype,
    ids [N, k] int64): the softmax top-k rule of Qwen3-Next's router on the masked logits."""
    masked = logits.masked_fill(mask, float("-inf"))
    probs = torch.softmax(masked, dim=-1, dtype=torch.float)
    weights, ids = torch.topk(probs, top_k, dim=-1)
    if renormalise:
        weights /= weights.sum(dim=-1, keepdim=True)
    return masked, weights.to(logits.dtype), ids


def _mask_hook(mask: torch.Tensor):
    def hook(module, args, output):
        logits = output[0]
        renormalise = bool(getattr(module, "norm_topk_prob", True))
        return masked_routing(logits, mask.to(logits.device), int(module.top_k), renormalise)

    return hook


@contextmanager
def mask_experts(model: torch.nn.Module, masked: Mapping[int, Sequence[int]], adapter=None):
    """Route `model` as if the experts `masked[layer]` of each MoE layer were pruned (see module docstring).
    masked: decoder-layer index -> expert ids; layers not named route as before (an empty list still installs the
    hook: the identity check)."""
    adapter = adapter or adapter_for_config(model.config)
    if adapter.router is None or adapter.router.scoring != "softmax":
        scoring = adapter.router.scoring if adapter.router is not None else "no router"
        raise ExpertMaskError(f"{adapter.name}: expert masking supports softmax top-k routers (Qwen3-Next, Qwen3.5-MoE, "
                              f"Qwen3-MoE, OLMoE, Mixtral); this family has {scoring}")
    routers = adapter.routers(model)
    plan = {}
    for layer, experts in masked.items():
        if layer not in routers:
            raise ExpertMaskError(f"layer {layer} has no router; MoE layers: {sorted(routers)}")
        router = routers[layer]
        if not hasattr(router, "top_k"):
            raise ExpertMaskError(f"{adapter.name}: router {type(router).__name__} has no top_k attribute to route with")
        num_experts = int(router.weight.shape[0])
        ids = sorted({int(e) for e in experts})
        if ids and not (0 <= ids[0] and ids[-1] < num_experts):
            raise ExpertMaskError(f"layer {layer}: expert ids must lie in [0, {num_experts}), got {ids[0]}..{ids[-1]}")
        if num_experts - len(ids) < int(router.top_k):
            raise ExpertMaskError(f"layer {layer}: masking {len(ids)} of {num_experts} experts leaves fewer than "
                                  f"top_k = {router.top_k}")
        mask = torch.zeros(num_experts, dtype=torch.bool, device=router.weight.device)
        mask[ids] = True
        plan[layer] = mask
    handles = []
    try:
        for layer, mask in plan.items():
            handles.append(routers[layer].register_forward_hook(_mask_hook(mask)))
        yield plan
    finally:
        remove_all(handles)
