"""The Adapter record: everything one model family is, as data and small pure functions.

Capture code asks the adapter where things are and what they mean; it never names a module path, a kernel global,
a config field or a scoring rule itself. A family is one file in this package that builds one `Adapter` and calls
`register` once (see qwen3_next.py for the pattern, registry.py for the lookup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .layer_kinds import FULL_ATTENTION, LINEAR_ATTENTION, layer_types_field

ROUTER_SCORINGS = ("softmax", "sigmoid")
DECAY_SHAPES = ("per_head", "per_key_channel")


@dataclass(frozen=True)
class RouterSite:
    """The MoE router of a decoder layer and how its scores become probabilities.

    path:     module path inside a decoder layer, e.g. "mlp.gate". Its forward returns
              (router_logits [N, E], topk_weights [N, k], topk_ids [N, k]) in every family transformers 5.24 ships;
              layers without that module (dense MLP layers) are simply not MoE layers.
    scoring:  "softmax": p = softmax(logits) over all E experts; the chosen experts are the top-k of p and their
              weights the chosen p (renormalised when the config says norm_topk_prob).
              "sigmoid": s = sigmoid(logits) per expert (DeepSeek-V3, Kimi-Linear); the choice is the top-k of
              s + e_score_correction_bias inside the best `topk_group` of `n_group` expert groups, the weights the
              chosen s renormalised and scaled by routed_scaling_factor. Router summaries then use p = s / sum(s)
              (see ops.router_stats.sigmoid_router_token_stats).
    shared_expert_gate: path inside a layer of a shared expert's gate Linear (pre-sigmoid logit [N, 1]); None where
              the shared expert is ungated (DeepSeek-V3, Kimi-Linear) or there is none.
    experts:  path inside a layer of the routed experts module, called as experts(hidden [N, H], topk_ids [N, k],
              topk_weights [N, k]) -> weighted sum [N, H] (transformers' `use_experts_implementation` classes).
    shared_expert: path inside a layer of the shared expert MLP (output [N, H], before its gate); None where none.
    """

    path: str = "mlp.gate"
    scoring: str = "softmax"
    shared_expert_gate: str | None = None
    experts: str = "mlp.experts"
    shared_expert: str | None = None

    def __post_init__(self):
        if self.scoring not in ROUTER_SCORINGS:
            raise ValueError(f"router scoring {self.scoring!r} is unknown; known: {', '.join(ROUTER_SCORINGS)}")


def split_query_gate(module: torch.nn.Module, projected: torch.Tensor) -> torch.Tensor:
    """Gate logits [B, T, H, D] out of a q_proj output [B, T, H * 2D] laid out per head as [q(D) | gate(D)]
    (Qwen3-Next and Qwen3.5 gated attention). H = module.config.num_attention_heads, D = module.head_dim."""
    heads, head_dim = module.config.num_attention_heads, module.head_dim
    return projected.view(*projected.shape[:-1], heads, 2 * head_dim)[..., head_dim:]


@dataclass(frozen=True)
class AttentionSite:
    """The softmax-attention block of a full-attention layer.

    path:       module path inside a decoder layer; it must call transformers' attention interface
                (ALL_ATTENTION_FUNCTIONS) so the capture can see query and key after rotary.
    gate_path:  path, inside the attention block, of the Linear whose output holds the output gate; None where
                attention has no output gate (plain and MLA attention).
    gate_logits: (attention module, gate_path output) -> gate logits [B, T, H, D]; the attention output of head h
                is multiplied by sigmoid(gate logits) before o_proj.
    """

    path: str = "self_attn"
    gate_path: str | None = None
    gate_logits: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        if (self.gate_path is None) != (self.gate_logits is None):
            raise ValueError("an attention output gate needs both gate_path and gate_logits")


@dataclass(frozen=True)
class KernelArguments:
    """Names under which a linear-attention kernel global takes its inputs (bound by signature, so positional and
    keyword calls both work)."""

    query: str = "query"
    key: str = "key"
    value: str = "value"
    g: str = "g"
    beta: str = "beta"
    initial_state: str = "initial_state"
    qk_l2norm: str = "use_qk_l2norm_in_kernel"

    def required(self) -> tuple[str, ...]:
        """The names the recorder reads from every call: the resolved kernel signature must take each one
        (adapters/upstream.py refuses before any forward otherwise). qk_l2norm is optional (False when absent)."""
        return (self.query, self.key, self.value, self.g, self.beta, self.initial_state)


@dataclass(frozen=True)
class LinearAttentionSite:
    """The delta-rule block of a linear-attention layer and the kernels its forward calls by global name.

    path:        module path inside a decoder layer (e.g. "linear_attn"; Kimi-Linear: "self_attn").
    chunk_kernel, recurrent_kernel: names of the module globals of the block's modeling file that the forward
                 looks up on every call (prefill, cached one-token decode). Every modeling file holds its own copy,
                 so the capture patches the file that defines the block's class.
    arguments:   the kernels' argument names.
    decay:       shape of the log decay g the kernel receives: "per_head" g [B, T, H] (Gated DeltaNet: one decay
                 per value head and token), "per_key_channel" g [B, T, H, K] (Kimi Delta Attention: one decay per
                 key channel). g <= 0; decay factor exp(g); half-life ln2 / -g tokens.
    label:       what the layer kind is called on pages and axes ("DeltaNet", "KDA").
    key_heads, value_heads: attributes of the block holding its key and value head counts.
    """

    path: str = "linear_attn"
    chunk_kernel: str = "torch_chunk_gated_delta_rule"
    recurrent_kernel: str = "torch_recurrent_gated_delta_rule"
    arguments: KernelArguments = field(default_factory=KernelArguments)
    decay: str = "per_head"
    label: str = "DeltaNet"
    key_heads: str = "num_k_heads"
    value_heads: str = "num_v_heads"

    def __post_init__(self):
        if self.decay not in DECAY_SHAPES:
            raise ValueError(f"decay shape {self.decay!r} is unknown; known: {', '.join(DECAY_SHAPES)}")

    def kernels(self) -> tuple[tuple[str, str], ...]:
        """(global name, call kind) of each kernel: kind "chunk" (prefill) or "recurrent" (decode)."""
        return ((self.chunk_kernel, "chunk"), (self.recurrent_kernel, "recurrent"))


@dataclass(frozen=True)
class Adapter:
    """One model family.

    name:          family name shown to users, e.g. "qwen3_next".
    model_types:   `config.model_type` values of causal-LM configs this adapter serves (registry keys).
    architecture:  the transformers class that loads it, e.g. "Qwen3NextForCausalLM" (recorded in run manifests).
    wrapper_model_types: model_types of multimodal wrapper configs whose `text_config` is one of model_types:
                   the loader takes the text config and loads the text decoder only (no vision tower).
    layers:        path of the decoder-layer ModuleList.
    layer_kinds_of: text config -> kind of every decoder layer ("linear_attention" / "full_attention"): from
                   `layer_types` (falling back to `full_attention_interval`), or all attention; see layer_kinds.py.
    router, attention, linear_attention: capture sites; None where the family has none (a dense model has no
                   router, a plain MoE no linear attention).
    captures:      what the family gives, per capture kind, in one line (the families table of the docs).
    """

    name: str
    model_types: tuple[str, ...]
    architecture: str
    layers: str = "model.layers"
    layer_kinds_of: Callable = layer_types_field
    router: RouterSite | None = None
    attention: AttentionSite | None = AttentionSite()
    linear_attention: LinearAttentionSite | None = None
    wrapper_model_types: tuple[str, ...] = ()
    captures: str = ""

    def __post_init__(self):
        if not self.model_types:
            raise ValueError(f"adapter {self.name!r} serves no model_type")

    def text_config(self, config):
        """The config of the decoder stack: `config.text_config` for a multimodal wrapper, else config itself."""
        if config.model_type in self.wrapper_model_types:
            return config.text_config
        return config

    def layer_kinds(self, config) -> list[str]:
        """Kind of every decoder layer, one entry per layer."""
        text = self.text_config(config)
        kinds = list(self.layer_kinds_of(text))
        if len(kinds) != text.num_hidden_layers:
            raise ValueError(f"{self.name}: {len(kinds)} layer kinds for {text.num_hidden_layers} layers")
        return kinds

    def decoder_layers(self, model: torch.nn.Module) -> torch.nn.ModuleList:
        return model.get_submodule(self.layers)

    def layers_of_kind(self, model: torch.nn.Module, kind: str) -> dict[int, torch.nn.Module]:
        """Decoder-layer index -> mixing block (attention or linear attention) for every layer of `kind`."""
        site = {FULL_ATTENTION: self.attention, LINEAR_ATTENTION: self.linear_attention}[kind]
        if site is None:
            return {}
        layers = self.decoder_layers(model)
        kinds = self.layer_kinds(model.config)
        return {i: layers[i].get_submodule(site.path) for i, k in enumerate(kinds) if k == kind}

    def routers(self, model: torch.nn.Module) -> dict[int, torch.nn.Module]:
        """Decoder-layer index -> router module, for every layer that has one (dense layers have none)."""
        if self.router is None:
            return {}
        return {i: r for i, layer in enumerate(self.decoder_layers(model))
                if (r := _submodule(layer, self.router.path)) is not None}

    def shared_expert_gates(self, model: torch.nn.Module) -> dict[int, torch.nn.Module]:
        """Decoder-layer index -> shared-expert gate Linear, for the MoE layers that have one."""
        if self.router is None or self.router.shared_expert_gate is None:
            return {}
        return {i: g for i, layer in enumerate(self.decoder_layers(model))
                if (g := _submodule(layer, self.router.shared_expert_gate)) is not None}

    def experts_modules(self, model: torch.nn.Module) -> dict[int, torch.nn.Module]:
        """Decoder-layer index -> routed experts module of every MoE layer (RouterSite.experts)."""
        return _layer_modules(self, model, self.router.experts if self.router else None)

    def shared_experts(self, model: torch.nn.Module) -> dict[int, torch.nn.Module]:
        """Decoder-layer index -> shared expert MLP of every MoE layer that has one (RouterSite.shared_expert)."""
        return _layer_modules(self, model, self.router.shared_expert if self.router else None)


def _layer_modules(adapter: "Adapter", model: torch.nn.Module, path: str | None) -> dict[int, torch.nn.Module]:
    if adapter.router is None or path is None:
        return {}
    return {i: m for i, layer in enumerate(adapter.decoder_layers(model)) if (m := _submodule(layer, path)) is not None}


def _submodule(root: torch.nn.Module, path: str) -> torch.nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None
