"""Routing recorder: forward hooks on MoE routers and shared-expert gates. They observe only: each returns None, so
the module's output is untouched. Reductions run on the model's device and stay there until `collect`.

Sites (from the adapter's RouterSite): the router module of every MoE layer, whose forward returns
(router_logits [N, E], topk_weights [N, k], topk_ids [N, k]); the shared-expert gate Linear (logit [N, 1]) where the
family has one. A family without a router (a dense hybrid) records nothing and writes no routing table.
"""

from __future__ import annotations

import torch

from ...adapters.upstream import check_router_output, site_error
from ...ops.router_stats import ROUTER_STATS
from ..recorder import CaptureError, SequenceInfo, removed_on_error
from .record import RoutingCapture
from .tables import batch_routing_tables, routing_tables
from ..transfer import layers_and_calls, stack_layers, to_host


def check_sites(model: torch.nn.Module, adapter, routers: dict[int, torch.nn.Module]) -> None:
    """Before any hook: one router of each class returns the (logits, weights, ids) triple the hook reads, and
    every shared-expert gate gives one logit per token. A SiteError (one line) otherwise."""
    hidden_size = adapter.text_config(model.config).hidden_size
    checked = set()
    for index, router in routers.items():
        if type(router) not in checked:
            checked.add(type(router))
            check_router_output(adapter.name, f"{type(router).__name__} at {adapter.layers}.{index}."
                                f"{adapter.router.path}", router, hidden_size)
    for index, gate in adapter.shared_expert_gates(model).items():
        if getattr(gate, "out_features", 1) != 1:
            raise site_error(adapter.name, f"{adapter.layers}.{index}.{adapter.router.shared_expert_gate}",
                             f"the shared-expert gate gives {gate.out_features} logits per token, not 1")


class RoutingRecorder:
    """Holds per-layer device tensors from the hooks of one or more forward calls."""

    kind = "routing"

    def __init__(self, keep_logits: bool = False):
        self.keep_logits = keep_logits
        self.token_stats = ROUTER_STATS["softmax"]
        self._router: dict[int, list[dict[str, torch.Tensor]]] = {}
        self._shared: dict[int, list[torch.Tensor]] = {}

    def attach(self, model: torch.nn.Module, adapter) -> list:
        if adapter.router is None:
            return []  # a dense family: nothing to route, no routing table
        routers = adapter.routers(model)
        if not routers:
            raise CaptureError(f"{adapter.name}: no router found at '{adapter.layers}.*.{adapter.router.path}'")
        self.token_stats = ROUTER_STATS[adapter.router.scoring]
        check_sites(model, adapter, routers)
        handles = []
        with removed_on_error(handles):
            for index, router in routers.items():
                handles.append(router.register_forward_hook(self.router_hook(index)))
            for index, gate in adapter.shared_expert_gates(model).items():
                handles.append(gate.register_forward_hook(self.shared_gate_hook(index)))
        return handles

    def attach_layer(self, layer: torch.nn.Module, index: int, adapter) -> list:
        """Hook the router (and shared-expert gate) of one decoder layer outside the model's layer list, recorded
        under layer `index` (the MTP head's layer, capture/mtp/). Returns the handles."""
        self.token_stats = ROUTER_STATS[adapter.router.scoring]
        handles = [layer.get_submodule(adapter.router.path).register_forward_hook(self.router_hook(index))]
        if adapter.router.shared_expert_gate is not None:
            gate = layer.get_submodule(adapter.router.shared_expert_gate)
            handles.append(gate.register_forward_hook(self.shared_gate_hook(index)))
        return handles

    def begin_sequence(self, sequence: SequenceInfo) -> None:
        pass

    def begin_batch(self, sequences: list[SequenceInfo]) -> None:
        pass  # routing is per token: a row's tokens are rows `sequence.rows` of the flattened [B * T] axis

    def router_hook(self, layer: int):
        def hook(module, args, output):
            router_logits, topk_weights, topk_ids = output[0], output[1], output[2]
            record = self.token_stats(router_logits.detach(), topk_ids.detach())
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
        layers, per_layer = layers_and_calls(self._router, "MoE")
        names = ["topk_ids", "topk_weights", "router_entropy", "topk_mass", "topk_margin"]
        if self.keep_logits:
            names.append("router_logits")
        fields = {
            name: stack_layers([[record[name] for record in calls] for calls in per_layer])
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

    def tables(self, record: RoutingCapture, sequence: SequenceInfo) -> dict:
        return routing_tables(sequence.seq_id, record, sequence.rows)

    def batch_tables(self, record: RoutingCapture, sequences: list[SequenceInfo]) -> dict:
        """The tables of every row of a batch at once (one gather per column), equal to `tables` of each row."""
        return batch_routing_tables([(s.seq_id, s.rows) for s in sequences], record)
