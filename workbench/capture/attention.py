"""Attention-recall capture of the gated full-attention layers: what each head retrieves, without T x T memory.

Sites, in execution order inside each full-attention block (`adapter.full_attention`, layer kinds read from
`config.layer_types`), for one forward call with Tq new tokens and Tk keys (Tk = Tq without a cache):
  1. `q_proj` forward hook: output [B, Tq, Hq * 2D] laid out per head as [q(D) | gate(D)];
     g = sigmoid(gate) in (0, 1) multiplies the head's attention output before o_proj (0 = head silenced).
     Recorded per token and head: gate_mean = mean_D g, gate_low_fraction = fraction of the D entries < 0.1.
  2. attention function (`attention_function.py`, swapped in with model.set_attn_implementation): query
     [B, Hq, Tq, D] and key [B, Hkv, Tk, D] after q/k RMSNorm and (partial) rotary, as the model attends.
     Query row i is token Tk - Tq + i. Recorded for the selected rows (every `stride`-th token, the last
     token of the call, tokens of query spans): span masses, top-k keys, entropy, sink mass, mean distance
     (`ops.attention_stats`, blockwise over keys, fp32).
The model's attention output is the delegate's (sdpa or eager) unchanged; the previous implementation is
restored by `close()`, which the capture context calls in `finally`.
Assumes a pure causal mask (batch 1, or equal-length sequences without padding), as tracing runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..adapters import FULL_ATTENTION, Adapter
from ..ops.attention_stats import AttentionStats, Span
from .attention_function import ACTIVE, DELEGATES, PREFIX, recall_name, rows_attention_stats, select_rows
from .transfer import stack_layers, to_host

GATE_LOW = 0.1  # a gate entry below this counts as (nearly) closed


class AttentionCaptureError(ValueError):
    """Attention capture cannot run on this model (no full-attention layer, unsupported implementation)."""


@dataclass
class AttentionCapture:
    """Attention statistics of one or more forward calls, on the CPU. L = full-attention layers captured,
    B = batch, Q = analysed query rows (all calls, in call order), H = query heads, T = tokens of all calls.

    layers:            [L] decoder-layer index of each full-attention layer.
    query_positions:   [Q] int64 absolute token position of each analysed row.
    span_mass:         name -> [L, B, Q, H] fp32 attention mass on the span's tokens (0..1).
    topk_pos:          [L, B, Q, H, k] int64 most-attended key positions, heaviest first (-1 = fewer keys).
    topk_weight:       [L, B, Q, H, k] fp32 their attention weights.
    entropy:           [L, B, Q, H] fp32 nats.   sink_mass: weight on token 0.
    mean_distance:     [L, B, Q, H] fp32 tokens, sum_j p_j (q - j).
    gate_mean:         [L, B, T, H] fp32 mean over the head dim of sigmoid(gate), per token; None without gate.
    gate_low_fraction: [L, B, T, H] fp32 fraction of the head dim with sigmoid(gate) < 0.1; None without gate.
    """

    layers: list[int]
    query_positions: torch.Tensor
    span_mass: dict[str, torch.Tensor]
    topk_pos: torch.Tensor
    topk_weight: torch.Tensor
    entropy: torch.Tensor
    sink_mass: torch.Tensor
    mean_distance: torch.Tensor
    gate_mean: torch.Tensor | None
    gate_low_fraction: torch.Tensor | None


def full_attention_layers(model: torch.nn.Module, adapter: Adapter) -> dict[int, torch.nn.Module]:
    """Decoder-layer index -> full-attention block, for the layers config.layer_types calls full_attention.
    Raises AttentionCaptureError when there is none (attention stats would be empty)."""
    kinds = adapter.layer_kinds(model.config)
    layers = model.get_submodule(adapter.layers)
    found = {}
    if adapter.full_attention is not None:
        found = {i: layers[i].get_submodule(adapter.full_attention) for i, k in enumerate(kinds) if k == FULL_ATTENTION}
    if not found:
        raise AttentionCaptureError(
            f"{adapter.architecture}: attention capture needs a full-attention layer, but config.layer_types has "
            f"none ({sorted(set(kinds))}); capture without attention=True"
        )
    return found


@dataclass
class AttentionRecorder:
    """Holds per-layer device tensors from the attention function and the gate hooks until `collect()`."""

    stride: int
    top_k: int
    block_size: int = 4096
    spans: list[Span] = field(default_factory=list)
    named_positions: list[int] = field(default_factory=list)
    _stats: dict[int, list[AttentionStats]] = field(default_factory=dict, init=False, repr=False)
    _gate: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=dict, init=False, repr=False)

    def set_sequence(self, spans: Sequence[Span] = (), query_positions: Sequence[int] = ()) -> None:
        """What the next forward calls analyse: spans (name, start token, end token) whose attention mass is
        measured, and positions analysed besides the stride rows and each call's last token."""
        self.spans = [(str(n), int(s), int(e)) for n, s, e in spans]
        self.named_positions = sorted({int(p) for p in query_positions})

    def attention_callback(self, layer: int):
        def record(module, query, key, scaling):
            with torch.no_grad():
                first = key.shape[-2] - query.shape[-2]
                rows = select_rows(first, query.shape[-2], self.stride, self.named_positions)
                stats = rows_attention_stats(query.detach(), key.detach(), rows, scaling, self.spans,
                                             self.top_k, self.block_size)
            self._stats.setdefault(layer, []).append(stats)

        return record

    def gate_hook(self, layer: int, num_heads: int, head_dim: int):
        def hook(module, args, output):
            q_and_gate = output.detach().view(*output.shape[:-1], num_heads, 2 * head_dim)  # [B, T, H, 2D]
            gate = torch.sigmoid(q_and_gate[..., head_dim:].float())  # [B, T, H, D]
            record = (gate.mean(-1), (gate < GATE_LOW).float().mean(-1))  # [B, T, H] each
            self._gate.setdefault(layer, []).append(record)

        return hook

    def collect(self) -> AttentionCapture | None:
        """Everything recorded since the last collect, on the CPU (one synchronisation), then cleared."""
        if not self._stats:
            return None
        layers = sorted(self._stats)
        calls = {len(self._stats[layer]) for layer in layers}
        if len(calls) != 1:
            raise RuntimeError(f"full-attention layers saw different numbers of forward calls: {calls}")
        per_layer = [self._stats[layer] for layer in layers]

        positions = torch.cat([s.query_positions.cpu() for s in per_layer[0]])
        names = list(per_layer[0][0].span_mass)
        fields = {
            name: stack_layers([[getattr(s, name) for s in calls_] for calls_ in per_layer], dim=1)
            for name in ("topk_pos", "topk_weight", "entropy", "sink_mass", "mean_distance")
        }
        for n in names:
            fields[f"span:{n}"] = stack_layers([[s.span_mass[n] for s in c] for c in per_layer], dim=1)
        if self._gate and all(layer in self._gate for layer in layers):
            fields["gate_mean"] = stack_layers([[g[0] for g in self._gate[layer]] for layer in layers], dim=1)
            fields["gate_low"] = stack_layers([[g[1] for g in self._gate[layer]] for layer in layers], dim=1)
        host = to_host(fields)
        capture = AttentionCapture(
            layers=layers,
            query_positions=positions,
            span_mass={n: host[f"span:{n}"] for n in names},
            topk_pos=host["topk_pos"],
            topk_weight=host["topk_weight"],
            entropy=host["entropy"],
            sink_mass=host["sink_mass"],
            mean_distance=host["mean_distance"],
            gate_mean=host.get("gate_mean"),
            gate_low_fraction=host.get("gate_low"),
        )
        self._stats.clear()
        self._gate.clear()
        return capture


class AttentionSession:
    """Swaps the model's attention implementation for the recording one and hooks the gates; `close()`
    undoes both (idempotent). Made by `start_attention_capture`."""

    def __init__(self, model: torch.nn.Module, adapter: Adapter, recorder: AttentionRecorder):
        self.model = model
        self.recorder = recorder
        self.modules = full_attention_layers(model, adapter)
        self.original = model.config._attn_implementation
        self.handles: list = []
        self._closed = False
        if self.original not in DELEGATES:
            nested = str(self.original).startswith(PREFIX)
            hint = " (an attention capture is already active on this model)" if nested else ""
            raise AttentionCaptureError(
                f"attention capture delegates to {' or '.join(DELEGATES)}, but the model runs "
                f"{self.original!r}{hint}; call model.set_attn_implementation('sdpa') first"
            )
        try:
            for layer, module in self.modules.items():
                ACTIVE[id(module)] = recorder.attention_callback(layer)
                if adapter.attention_q_gate is not None:
                    proj = module.get_submodule(adapter.attention_q_gate)
                    hook = recorder.gate_hook(layer, module.config.num_attention_heads, module.head_dim)
                    self.handles.append(proj.register_forward_hook(hook))
            model.set_attn_implementation(recall_name(self.original))
            if model.config._attn_implementation != recall_name(self.original):
                raise AttentionCaptureError(
                    f"{type(model).__name__} did not accept attention implementation {recall_name(self.original)!r} "
                    f"(it runs {model.config._attn_implementation!r}): it does not use transformers' AttentionInterface"
                )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for module in self.modules.values():
            ACTIVE.pop(id(module), None)
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        if self.model.config._attn_implementation != self.original:
            self.model.set_attn_implementation(self.original)


def start_attention_capture(model: torch.nn.Module, adapter: Adapter, stride: int, top_k: int,
                            block_size: int = 4096) -> AttentionSession:
    """Begin recording attention statistics of every full-attention layer; the caller must `close()`."""
    return AttentionSession(model, adapter, AttentionRecorder(stride=stride, top_k=top_k, block_size=block_size))
