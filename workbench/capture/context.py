"""`with capture(model) as run:` registers observing hooks and removes every one in `finally`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..adapters import Adapter, adapter_for_config
from .attention import AttentionCapture, AttentionSession, start_attention_capture
from .deltanet import DeltaNetCapture, DeltaNetRecorder, register_deltanet
from .routing import RoutingCapture, RoutingRecorder
from .settings import CaptureSettings


def _submodule(root: torch.nn.Module, path: str) -> torch.nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def moe_layers(model: torch.nn.Module, adapter: Adapter) -> dict[int, torch.nn.Module]:
    """Decoder-layer index -> router module, for every layer that has one (dense layers have none)."""
    layers = model.get_submodule(adapter.layers)
    routers = {}
    for index, layer in enumerate(layers):
        router = _submodule(layer, adapter.router)
        if router is not None:
            routers[index] = router
    return routers


@dataclass
class CaptureRun:
    """Live handle of one capture context. After each forward call, `collect_routing()` returns what the
    hooks saw (see RoutingCapture) and clears it."""

    model: torch.nn.Module
    adapter: Adapter
    settings: CaptureSettings
    routing: RoutingRecorder | None = None
    handles: list = field(default_factory=list)
    deltanet: DeltaNetRecorder | None = None
    attention: AttentionSession | None = None

    def collect_routing(self) -> RoutingCapture | None:
        return self.routing.collect() if self.routing is not None else None

    def set_recall_pairs(self, pairs) -> None:
        """(key_pos, value_pos) token pairs [P, 2] whose DeltaNet state recall the next prefill calls measure."""
        if self.deltanet is None:
            raise ValueError("DeltaNet capture is off (CaptureSettings(deltanet=True) turns it on)")
        self.deltanet.set_recall_pairs(pairs)

    def collect_deltanet(self) -> DeltaNetCapture | None:
        return self.deltanet.collect() if self.deltanet is not None else None

    def set_attention_sequence(self, spans=(), query_positions=()) -> None:
        """Spans (name, start token, end token) and extra query positions for the next forward calls."""
        if self.attention is None:
            raise ValueError("attention capture is off (CaptureSettings(attention=True) turns it on)")
        self.attention.recorder.set_sequence(spans, query_positions)

    def collect_attention(self) -> AttentionCapture | None:
        return self.attention.recorder.collect() if self.attention is not None else None


def _register_routing(run: CaptureRun) -> None:
    run.routing = RoutingRecorder(keep_logits=run.settings.router_logits)
    layers = run.model.get_submodule(run.adapter.layers)
    for index, router in moe_layers(run.model, run.adapter).items():
        run.handles.append(router.register_forward_hook(run.routing.router_hook(index)))
        if run.adapter.shared_expert_gate is not None:
            gate = _submodule(layers[index], run.adapter.shared_expert_gate)
            if gate is not None:
                run.handles.append(gate.register_forward_hook(run.routing.shared_gate_hook(index)))


@contextmanager
def capture(model: torch.nn.Module, settings: CaptureSettings | None = None, adapter: Adapter | None = None):
    """Observe `model`'s forward passes. Hooks never return a value, so outputs are unchanged.

    with capture(model, CaptureSettings(routing=True)) as run:
        model(input_ids)
        routing = run.collect_routing()
    """
    settings = settings or CaptureSettings()
    adapter = adapter or adapter_for_config(model.config)
    run = CaptureRun(model=model, adapter=adapter, settings=settings)
    try:
        if settings.routing:
            _register_routing(run)
            if run.routing is not None and not run.handles:
                raise ValueError(f"{adapter.architecture}: no router found at '{adapter.layers}.*.{adapter.router}'")
        if settings.attention:
            run.attention = start_attention_capture(model, adapter, settings.attention_stride, settings.attention_topk)
        if settings.deltanet:
            register_deltanet(run)  # kernel patches and layer hooks, all in run.handles
        yield run
    finally:
        for handle in run.handles:
            handle.remove()
        run.handles.clear()
        if run.attention is not None:
            run.attention.close()  # restores the model's attention implementation
