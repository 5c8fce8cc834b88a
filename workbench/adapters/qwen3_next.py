"""Qwen3-Next (Qwen3NextForCausalLM): Gated DeltaNet and gated attention 3:1, sparse MoE with a shared expert."""

from .base import Adapter
from .registry import register

QWEN3_NEXT = register(
    Adapter(
        architecture="Qwen3NextForCausalLM",
        layers="model.layers",
        router="mlp.gate",
        shared_expert_gate="mlp.shared_expert_gate",
        linear_attention="linear_attn",
        full_attention="self_attn",
        modeling_modules=("transformers.models.qwen3_next.modeling_qwen3_next",),
    )
)
