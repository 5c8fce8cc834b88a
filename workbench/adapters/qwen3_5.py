"""Qwen3.5 dense hybrid (Qwen3_5ForCausalLM): Qwen3-Next's Gated DeltaNet and gated attention (`layer_types`) with a
dense MLP, so there is no routing. Released checkpoints are the multimodal wrapper (model_type "qwen3_5",
`text_config`, weights under `model.language_model.`): the text decoder is loaded out of them, no vision tower."""

from .base import Adapter
from .qwen3_next import GATED_ATTENTION, GATED_DELTANET
from .registry import register

QWEN3_5 = register(
    Adapter(
        name="qwen3_5",
        model_types=("qwen3_5_text",),
        wrapper_model_types=("qwen3_5",),
        architecture="Qwen3_5ForCausalLM",
        router=None,
        attention=GATED_ATTENTION,
        linear_attention=GATED_DELTANET,
        captures="attention stats + output gate; DeltaNet state (no MoE: no routing table)",
    )
)
