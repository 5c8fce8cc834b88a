"""Qwen3-Next (Qwen3NextForCausalLM): Gated DeltaNet and gated attention 3:1 (`config.layer_types`), every layer's
MLP a softmax top-k MoE with a sigmoid-gated shared expert. The pattern every hybrid family file follows."""

from .base import Adapter, AttentionSite, LinearAttentionSite, RouterSite, split_query_gate
from .registry import register

GATED_ATTENTION = AttentionSite(path="self_attn", gate_path="q_proj", gate_logits=split_query_gate)
GATED_DELTANET = LinearAttentionSite(path="linear_attn")  # torch_chunk/recurrent_gated_delta_rule, g per head

QWEN3_NEXT = register(
    Adapter(
        name="qwen3_next",
        model_types=("qwen3_next",),
        architecture="Qwen3NextForCausalLM",
        router=RouterSite(path="mlp.gate", scoring="softmax", shared_expert_gate="mlp.shared_expert_gate",
                          shared_expert="mlp.shared_expert"),
        attention=GATED_ATTENTION,
        linear_attention=GATED_DELTANET,
        captures="routing (softmax, shared-expert gate); attention stats + output gate; DeltaNet state",
    )
)
