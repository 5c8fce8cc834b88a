"""A family the workbench does not ship, added the way every family is: this one file, one register() call.
Qwen2-MoE: plain softmax-attention transformer, softmax top-k router at mlp.gate, sigmoid-gated shared expert."""

from workbench.adapters import Adapter, RouterSite, all_full_attention, register

QWEN2_MOE = register(
    Adapter(
        name="qwen2_moe",
        model_types=("qwen2_moe",),
        architecture="Qwen2MoeForCausalLM",
        layer_kinds_of=all_full_attention,
        router=RouterSite(path="mlp.gate", scoring="softmax", shared_expert_gate="mlp.shared_expert_gate"),
        captures="routing (softmax, shared-expert gate); attention stats",
    )
)
