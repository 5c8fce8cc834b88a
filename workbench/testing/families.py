"""Tiny seeded configs of every supported family, for tests that write real checkpoints from them.

Each builder takes the vocabulary size (the byte tokenizer's 259) and returns a transformers config small enough
that a forward of a few dozen tokens runs in milliseconds on a CPU, while keeping what makes the family itself:
the hybrid layer layout, the router scoring, dense layers beside MoE ones, the multimodal wrapper.
"""

from __future__ import annotations

from .toy import TINY_DIMS, hybrid_layer_types, qwen3_5_moe_config, qwen3_next_config

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
