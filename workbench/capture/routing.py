"""Forward hooks on MoE routers and shared-expert gates. They observe only: each returns None, so the
module's output is untouched. Reductions run on the model's device and stay there until `collect`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ops.router_stats import router_token_stats
from .transfer import stack_layers, to_host


@dataclass
class RoutingCapture:
    """Routing of one forward pass, on the CPU. L = number of MoE layers captured, N = batch x tokens
    (row-major: token t of sequence b is row b*T + t), k = experts per token, E = experts.

    layers:         [L] decoder-layer index of each captured MoE layer.
    topk_ids:       [L, N, k] int16 expert ids (int32 past 32,767 experts), in the router's order (descending probability).
    topk_weights:   [L, N, k] fp32 weights the experts' outputs are mixed with (renormalised when the
                    config says norm_topk_prob).
    router_entropy, topk_mass, topk_margin: [L, N] fp32 (see ops.router_stats).
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


class RoutingRecorder:
    """Holds per-layer device tensors from the hooks of one or more forward calls."""

    def __init__(self, keep_logits: bool):
        self.keep_logits = keep_logits
        self._router: dict[int, list[dict[str, torch.Tensor]]] = {}
        self._shared: dict[int, list[torch.Tensor]] = {}

    def router_hook(self, layer: int):
        def hook(module, args, output):
            router_logits, topk_weights, topk_ids = output[0], output[1], output[2]
            record = router_token_stats(router_logits.detach(), topk_ids.detach())
            record["topk_ids"] = topk_ids.detach().to(torch.int16 if router_logits.shape[-1] <= 32767 else torch.int32)
            record["topk_weights"] = topk_weights.detach().float()
            if self.keep_logits:
                record["router_logits"] = router_logits.detach()
            self._router.setdefault(layer, []).append(record)

        return hook

    def shared_gate_hook(self, layer: int):
        def hook(module, args, output):
            self._shared.setdefault(layer, []).append(torch.sigmoid(output.detach().float()).squeeze(-1))

        return hook

    def collect(self) -> RoutingCapture | None:
        """Everything recorded since the last collect, moved to the CPU with one copy per field
        (no synchronisation per layer), then cleared. None when nothing was recorded."""
        if not self._router:
            return None
        layers = sorted(self._router)
        calls = {len(self._router[layer]) for layer in layers}
        if len(calls) != 1:
            raise RuntimeError(f"MoE layers saw different numbers of forward calls: {calls}")

        names = ["topk_ids", "topk_weights", "router_entropy", "topk_mass", "topk_margin"]
        if self.keep_logits:
            names.append("router_logits")
        fields = {
            name: stack_layers([[record[name] for record in self._router[layer]] for layer in layers])
            for name in names
        }
        if all(layer in self._shared for layer in layers):
            fields["shared_gate"] = stack_layers([self._shared[layer] for layer in layers])
        host = to_host(fields)
        num_tokens = host["topk_ids"].shape[1]
        capture = RoutingCapture(
            layers=layers,
            topk_ids=host["topk_ids"],
            topk_weights=host["topk_weights"],
            router_entropy=host["router_entropy"],
            topk_mass=host["topk_mass"],
            topk_margin=host["topk_margin"],
            shared_gate=host.get("shared_gate", torch.full((len(layers), num_tokens), float("nan"))),
            router_logits=host.get("router_logits"),
        )
        self._router.clear()
        self._shared.clear()
        return capture
