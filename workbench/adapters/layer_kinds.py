"""How a family's config says which decoder layers are linear attention and which are full attention.

Never "every 4th layer" in capture code: the config says it, in one of three ways.
"""

from __future__ import annotations

LINEAR_ATTENTION = "linear_attention"
FULL_ATTENTION = "full_attention"
KINDS = (LINEAR_ATTENTION, FULL_ATTENTION)


def layer_types_field(config) -> list[str]:
    """`config.layer_types` (Qwen3-Next, Qwen3.5, Kimi-Linear: transformers fills it from the checkpoint's
    full_attention_interval / linear_attn_config). Falls back to `full_attention_interval` when it is absent."""
    kinds = getattr(config, "layer_types", None)
    if kinds:
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"config.layer_types holds unknown kinds {unknown}; known: {', '.join(KINDS)}")
        return list(kinds)
    if getattr(config, "full_attention_interval", None):
        return full_attention_interval(config)
    raise ValueError("config has neither layer_types nor full_attention_interval: the hybrid layout is unknown")


def full_attention_interval(config) -> list[str]:
    """Full attention on layers interval-1, 2*interval-1, ... (`config.full_attention_interval`), else linear."""
    interval = int(config.full_attention_interval)
    return [FULL_ATTENTION if (i + 1) % interval == 0 else LINEAR_ATTENTION for i in range(config.num_hidden_layers)]


def all_full_attention(config) -> list[str]:
    """A plain transformer (Mixtral, OLMoE, Qwen3-MoE, DeepSeek-V3): every layer is softmax attention."""
    return [FULL_ATTENTION] * config.num_hidden_layers
