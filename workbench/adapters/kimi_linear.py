"""Kimi-Linear (KimiLinearForCausalLM): Kimi Delta Attention and MLA full attention (`layer_types`, both blocks at
`self_attn`); sparse MoE layers (`mlp_layer_types`) with a sigmoid router (correction bias, grouped top-k) and an
ungated shared expert. KDA's log decay is per key channel: g [B, T, H, K]."""

from .base import Adapter, AttentionSite, LinearAttentionSite, RouterSite
from .registry import register

KIMI_LINEAR = register(
    Adapter(
        name="kimi_linear",
        model_types=("kimi_linear",),
        architecture="KimiLinearForCausalLM",
        router=RouterSite(path="mlp.gate", scoring="sigmoid", shared_expert="mlp.shared_experts"),  # ungated
        attention=AttentionSite(path="self_attn"),  # MLA: keys expanded per head from the latent; no output gate
        linear_attention=LinearAttentionSite(
            path="self_attn",
            chunk_kernel="chunk_kimi_delta_attention",
            recurrent_kernel="recurrent_kimi_delta_attention",
            decay="per_key_channel",
            label="KDA",
            key_heads="num_heads",  # one key head per value head
            value_heads="num_heads",
        ),
        captures="routing (sigmoid + bias, grouped top-k); MLA attention stats; KDA state (decay per key channel)",
    )
)
