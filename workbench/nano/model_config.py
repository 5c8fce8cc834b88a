"""The nano Qwen3-Next: the release's structure (Qwen3-Next-80B-A3B) at a width that fits in 32 MB of bf16.

Kept from the release: 3 Gated DeltaNet layers per gated full-attention layer (layer_types), rotary on
the first 25% of each attention head, GQA, DeltaNet with twice as many value heads as key heads and a
width-4 causal conv, a sparse MoE MLP in every layer (softmax router, top-k renormalised, one shared expert
behind a sigmoid gate), k/E <= 1/16, rope_theta 1e7. Changed: widths, 128 experts top-8 (release: 512
top-10), tied embeddings, a shared expert 4x an expert's width (release: equal) so the dense path is not
starved at this size.

    nano (hidden 128, 8 layers, vocab 894): 14.30M parameters (28.6 MB bf16), 2.50M active per token;
    tiny (hidden 32, 32 experts top-2): 0.32M parameters, for CPU smoke tests.
"""

from __future__ import annotations

import torch
from transformers import Qwen3NextConfig, Qwen3NextForCausalLM

from .tokenizer import BOS_ID, EOS_ID, PAD_ID

MAX_CHECKPOINT_BYTES = 32_000_000  # bf16 checkpoint budget without the MTP head (32 MB, decimal)
# The MTP head (one full-attention decoder layer with its 128-expert MoE, fc and norms: 1.83M parameters) is 12.8%
# of the trunk, not the release's 2%, because the nano has 8 layers, not 48. It has a budget of its own.
MAX_MTP_BYTES = 4_000_000


def nano_config(vocab_size: int, tiny: bool = False, **overrides) -> Qwen3NextConfig:
    """The shipped nano config; tiny=True gives a same-structure toy for CPU smoke tests (~0.5M params)."""
    width = dict(hidden_size=32, moe_intermediate_size=8, shared_expert_intermediate_size=32, num_experts=32,
                 num_experts_per_tok=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                 linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16,
                 linear_value_head_dim=16) if tiny else \
        dict(hidden_size=128, moe_intermediate_size=32, shared_expert_intermediate_size=128, num_experts=128,
             num_experts_per_tok=8, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
             linear_num_key_heads=4, linear_num_value_heads=8, linear_key_head_dim=32, linear_value_head_dim=32)
    n_layers = 8
    params = dict(
        vocab_size=vocab_size, num_hidden_layers=n_layers,
        layer_types=["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n_layers)],
        intermediate_size=4 * width["hidden_size"],  # unused: no dense-MLP layers (mlp_only_layers is empty)
        decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True, linear_conv_kernel_dim=4,
        hidden_act="silu", tie_word_embeddings=True, max_position_embeddings=32768, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e7, "partial_rotary_factor": 0.25},
        router_aux_loss_coef=0.001, output_router_logits=False,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, **width)
    params.update(overrides)
    return Qwen3NextConfig(**params)


def param_counts(config: Qwen3NextConfig) -> dict[str, int]:
    """{total, routed_experts, active}: parameters (tied embedding counted once) and those used per token
    (everything except the routed experts a token is not sent to). Built on the meta device: no memory."""
    with torch.device("meta"):
        model = Qwen3NextForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())
    routed = sum(p.numel() for name, p in model.named_parameters() if ".mlp.experts." in name)
    active = total - routed + routed * config.num_experts_per_tok // config.num_experts
    return {"total": total, "routed_experts": routed, "active": active, "bf16_bytes": 2 * total}


def _rotary_factor(config: Qwen3NextConfig) -> float | None:
    rope = getattr(config, "rope_parameters", None) or {}
    return rope.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None))


def check_nano_structure(config: Qwen3NextConfig, max_bytes: int = MAX_CHECKPOINT_BYTES,
                         min_experts: int = 128) -> dict[str, int]:
    """Raise ValueError listing every way `config` departs from the nano requirements; return param_counts.
    (min_experts: 128 for the shipped model; the tiny smoke-test config passes a smaller number.)"""
    problems = []
    kinds = list(config.layer_types or [])
    n_full, n_linear = kinds.count("full_attention"), kinds.count("linear_attention")
    if len(kinds) != config.num_hidden_layers or n_full + n_linear != len(kinds):
        problems.append(f"layer_types must name every layer linear_attention/full_attention, got {kinds}")
    if n_linear != 3 * n_full:
        problems.append(f"linear:full attention must be 3:1, got {n_linear}:{n_full}")
    if n_full < 2:
        problems.append(f"need at least two full-attention layers, got {n_full}")
    if kinds and kinds[-1] != "full_attention":
        problems.append("the last layer must be full attention (every 4th layer, as in the release)")
    if _rotary_factor(config) != 0.25:
        problems.append(f"partial_rotary_factor must be 0.25, got {_rotary_factor(config)}")
    if config.decoder_sparse_step != 1 or list(config.mlp_only_layers or []):
        problems.append(f"every layer must be sparse MoE: decoder_sparse_step={config.decoder_sparse_step}, "
                        f"mlp_only_layers={config.mlp_only_layers}")
    if not config.shared_expert_intermediate_size:
        problems.append("a shared expert is required (shared_expert_intermediate_size > 0)")
    if config.num_experts < min_experts:
        problems.append(f"need at least {min_experts} experts, got {config.num_experts}")
    if config.num_experts_per_tok * 16 > config.num_experts:
        problems.append(f"top-k / experts must be <= 1/16, got {config.num_experts_per_tok}/{config.num_experts}")
    if not config.norm_topk_prob:
        problems.append("norm_topk_prob must be True")
    if not config.tie_word_embeddings:
        problems.append("tie_word_embeddings must be True")
    if config.linear_num_value_heads != 2 * config.linear_num_key_heads:
        problems.append("DeltaNet must have twice as many value heads as key heads")
    counts = param_counts(config)
    if counts["bf16_bytes"] > max_bytes:
        problems.append(f"bf16 checkpoint {counts['bf16_bytes'] / 1e6:.1f} MB exceeds {max_bytes / 1e6:.1f} MB "
                        f"({counts['total']:,} parameters)")
    if problems:
        raise ValueError("config is not a valid nano Qwen3-Next:\n  - " + "\n  - ".join(problems))
    return counts
