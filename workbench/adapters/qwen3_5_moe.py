"""Qwen3.5-MoE text causal LM (Qwen3_5MoeForCausalLM): same layer layout as Qwen3-Next, own modeling module."""

from .base import Adapter
from .registry import register

QWEN3_5_MOE = register(
    Adapter(
        architecture="Qwen3_5MoeForCausalLM",
        layers="model.layers",
        router="mlp.gate",
        shared_expert_gate="mlp.shared_expert_gate",
        linear_attention="linear_attn",
        full_attention="self_attn",
        modeling_modules=("transformers.models.qwen3_5_moe.modeling_qwen3_5_moe",),
    )
)
