"""The family facts a run manifest carries, so that the dashboard and the analyses never read raw config keys
(which differ by family: `num_experts`, `num_local_experts`, `n_routed_experts`; `num_experts_per_tok` or
`num_experts_per_token`; `linear_num_value_heads` or `linear_num_heads`).

    layer_kinds   kind of every decoder layer ("linear_attention" / "full_attention")
    layer_labels  what each layer is called on pages and axes: "L0 DeltaNet", "L3 attention", ...; an MTP layer
                  traced beside the trunk (routing rows under layer index num_hidden_layers) is labelled "MTP"
    moe_layers    decoder layers that have a router
    num_experts   routed experts per MoE layer; top_k: experts chosen per token (None without a router)
    router_scoring  "softmax" or "sigmoid" (adapters.base.RouterSite)
    heads         per layer kind present: {"full_attention": {"query": Hq, "key_value": Hkv},
                  "linear_attention": {"key": Hk, "value": Hv}}
Read from the loaded model's own modules (routers' num_experts and top_k, the blocks' head counts).
"""

from __future__ import annotations

import torch

from .base import Adapter
from ..trace.layer_labels import layer_labels
from .layer_kinds import FULL_ATTENTION, LINEAR_ATTENTION


def model_facts(adapter: Adapter, model: torch.nn.Module, mtp_layers: int = 0) -> dict:
    """The facts above for a loaded model, as JSON values; `mtp_layers`: MTP layers traced beside the trunk."""
    kinds = adapter.layer_kinds(model.config)
    routers = adapter.routers(model)
    router = next(iter(routers.values()), None)
    heads = {}
    attention = next(iter(adapter.layers_of_kind(model, FULL_ATTENTION).values()), None)
    if attention is not None:
        heads[FULL_ATTENTION] = {"query": int(attention.config.num_attention_heads),
                                 "key_value": int(attention.config.num_key_value_heads)}
    linear = next(iter(adapter.layers_of_kind(model, LINEAR_ATTENTION).values()), None)
    if linear is not None:
        site = adapter.linear_attention
        heads[LINEAR_ATTENTION] = {"key": int(getattr(linear, site.key_heads)),
                                   "value": int(getattr(linear, site.value_heads))}
    linear_label = adapter.linear_attention.label if adapter.linear_attention is not None else "linear attention"
    return {
        "layer_kinds": kinds,
        "layer_labels": layer_labels(kinds, linear_label, mtp_layers),
        "moe_layers": sorted(routers),
        "num_experts": int(router.num_experts) if router is not None else None,
        "top_k": int(router.top_k) if router is not None else None,
        "router_scoring": adapter.router.scoring if adapter.router is not None else None,
        "heads": heads,
    }
