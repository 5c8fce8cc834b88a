"""Qwen3.5-MoE (Qwen3_5MoeForCausalLM): Qwen3-Next's layer layout and router in its own modeling module; released
as the multimodal wrapper (model_type "qwen3_5_moe"), from which the text decoder is loaded."""

from .base import Adapter, RouterSite
from .qwen3_next import GATED_ATTENTION, GATED_DELTANET
from .registry import register

QWEN3_5_MOE = register(
    Adapter(
        name="qwen3_5_moe",
        model_types=("qwen3_5_moe_text",),
        wrapper_model_types=("qwen3_5_moe",),
        architecture="Qwen3_5MoeForCausalLM",
        router=RouterSite(path="mlp.gate", scoring="softmax", shared_expert_gate="mlp.shared_expert_gate",
                          shared_expert="mlp.shared_expert"),
        attention=GATED_ATTENTION,
        linear_attention=GATED_DELTANET,
        captures="routing (softmax, shared-expert gate); attention stats + output gate; DeltaNet state",
    )
)
