"""The smallest config of every supported family, built from nothing (no download): what `workbench doctor`
builds to check that each capture site resolves on the installed transformers, and what the tests write real
checkpoints from.

Each builder takes the vocabulary size (the byte tokenizer's 259) and returns a transformers config small enough
that a forward of a few dozen tokens runs in milliseconds on a CPU, while keeping what makes the family itself:
the hybrid layer layout, the router scoring, dense layers beside MoE ones, the multimodal wrapper.
"""

from __future__ import annotations

TINY_DIMS = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    partial_rotary_factor=0.25,
    linear_num_key_heads=2,
    linear_num_value_heads=4,
    linear_key_head_dim=16,
    linear_value_head_dim=16,
    linear_conv_kernel_dim=4,
    num_experts=32,
    num_experts_per_tok=4,
    moe_intermediate_size=32,
    shared_expert_intermediate_size=32,
    norm_topk_prob=True,
    decoder_sparse_step=1,
    mlp_only_layers=[],
)


def hybrid_layer_types(num_layers: int, interval: int = 4) -> list[str]:
    """DeltaNet and full attention 3:1, full attention on layers interval-1, 2*interval-1, ..."""
    return ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(num_layers)]


def qwen3_next_config(num_layers: int = 4, vocab_size: int = 259, dims: dict | None = None, **overrides):
    from transformers import Qwen3NextConfig

    options = dict(TINY_DIMS if dims is None else dims)
    options.update(
        num_hidden_layers=num_layers,
        layer_types=hybrid_layer_types(num_layers),
        vocab_size=vocab_size,
        max_position_embeddings=262144,
        architectures=["Qwen3NextForCausalLM"],
    )
    options.update(overrides)
    return Qwen3NextConfig(**options)


def qwen3_5_moe_config(num_layers: int = 4, vocab_size: int = 259, **overrides):
    from transformers import Qwen3_5MoeTextConfig

    dropped = ("intermediate_size", "decoder_sparse_step", "mlp_only_layers")
    options = {k: v for k, v in TINY_DIMS.items() if k not in dropped}
    options.update(
        num_hidden_layers=num_layers,
        layer_types=hybrid_layer_types(num_layers),
        vocab_size=vocab_size,
        architectures=["Qwen3_5MoeForCausalLM"],
    )
    options.update(overrides)
    return Qwen3_5MoeTextConfig(**options)


SPECIAL_TOKENS = dict(bos_token_id=256, eos_token_id=257, pad_token_id=258)  # byte_tokenizer's <bos>, <eos>, <pad>
ATTENTION_DIMS = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16)
LINEAR_DIMS = {k: v for k, v in TINY_DIMS.items() if k.startswith("linear_")}


def qwen3_5_text_config(vocab_size: int = 259, num_layers: int = 4, **overrides):
    """Qwen3.5 dense hybrid: Gated DeltaNet and gated attention 3:1, dense MLP (no router)."""
    from transformers import Qwen3_5TextConfig

    options = dict(ATTENTION_DIMS, **LINEAR_DIMS, intermediate_size=128, num_hidden_layers=num_layers,
                   layer_types=hybrid_layer_types(num_layers), vocab_size=vocab_size, **SPECIAL_TOKENS)
    options.update(overrides)
    return Qwen3_5TextConfig(**options)


def qwen3_5_wrapper_config(vocab_size: int = 259, num_layers: int = 4):
    """Qwen3.5 as released: the multimodal wrapper (model_type "qwen3_5") with a tiny vision tower."""
    from transformers import Qwen3_5Config

    text = qwen3_5_text_config(vocab_size, num_layers).to_dict()
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=ATTENTION_DIMS["hidden_size"])
    return Qwen3_5Config(text_config=text, vision_config=vision, architectures=["Qwen3_5ForConditionalGeneration"])


def qwen3_5_moe_wrapper_config(vocab_size: int = 259, num_layers: int = 4):
    """Qwen3.5-MoE as released: the multimodal wrapper (model_type "qwen3_5_moe") with a tiny vision tower."""
    from transformers import Qwen3_5MoeConfig

    text = qwen3_5_moe_config(num_layers=num_layers, vocab_size=vocab_size, **SPECIAL_TOKENS).to_dict()
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=ATTENTION_DIMS["hidden_size"])
    return Qwen3_5MoeConfig(text_config=text, vision_config=vision, architectures=["Qwen3_5MoeForConditionalGeneration"])


def kimi_linear_config(vocab_size: int = 259, num_layers: int = 4, **overrides):
    """Kimi-Linear: KDA and MLA attention 3:1, first layer dense, then sigmoid-routed MoE (4 groups, best 2)."""
    from transformers import KimiLinearConfig

    options = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=4,
                   num_hidden_layers=num_layers, vocab_size=vocab_size, kv_lora_rank=16, q_lora_rank=None,
                   qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16, linear_head_dim=16, linear_num_heads=4,
                   num_experts=16, num_experts_per_tok=4, moe_intermediate_size=32, n_group=4, topk_group=2,
                   layer_types=hybrid_layer_types(num_layers),
                   mlp_layer_types=["dense"] + ["sparse"] * (num_layers - 1), **SPECIAL_TOKENS)
    options.update(overrides)
    return KimiLinearConfig(**options)


def qwen3_moe_config(vocab_size: int = 259, num_layers: int = 2):
    from transformers import Qwen3MoeConfig

    return Qwen3MoeConfig(**ATTENTION_DIMS, intermediate_size=128, num_hidden_layers=num_layers, vocab_size=vocab_size,
                          num_experts=16, num_experts_per_tok=4, moe_intermediate_size=32, norm_topk_prob=True,
                          **SPECIAL_TOKENS)


def olmoe_config(vocab_size: int = 259, num_layers: int = 2):
    from transformers import OlmoeConfig

    return OlmoeConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=32,
                       num_hidden_layers=num_layers, vocab_size=vocab_size, num_experts=16, num_experts_per_tok=4,
                       norm_topk_prob=False, **SPECIAL_TOKENS)


def mixtral_config(vocab_size: int = 259, num_layers: int = 2):
    from transformers import MixtralConfig

    return MixtralConfig(**ATTENTION_DIMS, intermediate_size=32, num_hidden_layers=num_layers, vocab_size=vocab_size,
                         num_local_experts=8, num_experts_per_tok=2, **SPECIAL_TOKENS)


def deepseek_v3_config(vocab_size: int = 259, num_layers: int = 3):
    """DeepSeek-V3: MLA attention, first layer dense, sigmoid-routed MoE (4 groups, best 2) with a shared expert."""
    from transformers import DeepseekV3Config

    return DeepseekV3Config(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=4,
                            num_hidden_layers=num_layers, vocab_size=vocab_size, n_routed_experts=16,
                            num_experts_per_tok=4, moe_intermediate_size=32, n_group=4, topk_group=2,
                            first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=None, qk_rope_head_dim=8,
                            qk_nope_head_dim=8, v_head_dim=16, **SPECIAL_TOKENS)


# family name -> tiny config builder (vocab_size); "*_wrapper": the family saved as its multimodal wrapper
FAMILY_CONFIGS = {
    "qwen3_next": lambda vocab: qwen3_next_config(num_layers=4, vocab_size=vocab),
    "qwen3_5_moe": lambda vocab: qwen3_5_moe_config(num_layers=4, vocab_size=vocab),
    "qwen3_5": qwen3_5_text_config,
    "qwen3_5_wrapper": qwen3_5_wrapper_config,
    "qwen3_5_moe_wrapper": qwen3_5_moe_wrapper_config,
    "kimi_linear": kimi_linear_config,
    "qwen3_moe": qwen3_moe_config,
    "olmoe": olmoe_config,
    "mixtral": mixtral_config,
    "deepseek_v3": deepseek_v3_config,
}


def build_family_model(name: str, vocab_size: int = 259, seed: int = 0):
    """Seeded random model of a family; sigmoid routers get a random correction bias (zeros would hide its role)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3_5ForConditionalGeneration, Qwen3_5MoeForConditionalGeneration

    config = FAMILY_CONFIGS[name](vocab_size)
    torch.manual_seed(seed)
    wrappers = {"qwen3_5_wrapper": Qwen3_5ForConditionalGeneration,
                "qwen3_5_moe_wrapper": Qwen3_5MoeForConditionalGeneration}
    if name in wrappers:  # saved as released: vision tower and language model under model.language_model
        model = wrappers[name](config)
    else:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            bias = getattr(module, "e_score_correction_bias", None)
            if bias is not None:
                bias.copy_(0.1 * torch.randn(bias.shape, generator=generator))
    return model.eval()
