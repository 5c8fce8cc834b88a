"""The Adapter record: what one model family looks like to the capture code. Data only, no logic
beyond reading the config."""

from __future__ import annotations

from dataclasses import dataclass, field

LINEAR_ATTENTION = "linear_attention"
FULL_ATTENTION = "full_attention"


@dataclass(frozen=True)
class Adapter:
    """Capture sites of one HF architecture, as module paths relative to the model.

    architecture:        HF `config.architectures[0]`, e.g. "Qwen3NextForCausalLM" (the registry key).
    layers:              path of the decoder-layer ModuleList, e.g. "model.layers".
    router:              path, inside a decoder layer, of the top-k router module. Its forward returns
                         (router_logits [N, E], topk_weights [N, k], topk_ids [N, k]).
    shared_expert_gate:  path, inside a layer, of the shared expert's gate Linear (pre-sigmoid logit
                         [N, 1]); None where the family has no gated shared expert.
    linear_attention:    path, inside a layer, of the DeltaNet block (layer kind "linear_attention").
    full_attention:      path, inside a layer, of the gated attention block (layer kind "full_attention").
    modeling_modules:    python modules whose globals hold the DeltaNet kernels (wrapped by later capture).
    router_scoring:      how router logits become probabilities ("softmax" over all experts).
    text_config_attr:    attribute holding the text config on multimodal configs, or None.
    attention_q_gate:    path, inside the full-attention block, of the Linear whose output holds query and
                         output gate per head, [q(D) | gate(D)] x heads; None where attention has no output gate.
    """

    architecture: str
    layers: str
    router: str
    shared_expert_gate: str | None
    linear_attention: str | None
    full_attention: str | None
    modeling_modules: tuple[str, ...] = field(default_factory=tuple)
    router_scoring: str = "softmax"
    text_config_attr: str | None = None
    attention_q_gate: str | None = "q_proj"

    def __post_init__(self):
        if self.router_scoring != "softmax":
            raise ValueError(f"{self.architecture}: router_scoring {self.router_scoring!r} is not supported yet")

    def text_config(self, config):
        """The config that describes the decoder stack (the text config of a multimodal model)."""
        if self.text_config_attr is not None:
            return getattr(config, self.text_config_attr)
        return config

    def layer_kinds(self, config) -> list[str]:
        """Kind of every decoder layer, read from `config.layer_types` (never "every 4th layer")."""
        text = self.text_config(config)
        kinds = list(getattr(text, "layer_types", None) or [])
        if len(kinds) != text.num_hidden_layers:
            raise ValueError(
                f"{self.architecture}: config.layer_types has {len(kinds)} entries "
                f"for {text.num_hidden_layers} layers"
            )
        return kinds
