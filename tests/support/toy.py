"""Small seeded models and a byte-level tokenizer, built without any download.

Used by the tests (which write real checkpoints from them) and by the benchmarks (real-dimension slices of
the 80B model with few layers; bench/ scripts put tests/ on sys.path). Not part of the installed package: the
family configs themselves live in the library (workbench/adapters/tiny.py, which `workbench doctor` uses).
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.adapters.tiny import TINY_DIMS, hybrid_layer_types, qwen3_5_moe_config, qwen3_next_config  # noqa: F401

# Qwen3-Next-80B-A3B's per-layer dimensions (see shared notes): a slice of N layers keeps them.
REAL_80B_DIMS = dict(
    hidden_size=2048,
    num_attention_heads=16,
    num_key_value_heads=2,
    head_dim=256,
    partial_rotary_factor=0.25,
    linear_num_key_heads=16,
    linear_num_value_heads=32,
    linear_key_head_dim=128,
    linear_value_head_dim=128,
    linear_conv_kernel_dim=4,
    num_experts=512,
    num_experts_per_tok=10,
    moe_intermediate_size=512,
    shared_expert_intermediate_size=512,
    norm_topk_prob=True,
    decoder_sparse_step=1,
    mlp_only_layers=[],
)

def build_model(config, seed: int = 0, dtype: torch.dtype = torch.float32):
    """Seeded random-init causal LM for `config` (eval mode)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def byte_tokenizer():
    """A byte-level BPE tokenizer with no merges (256 byte tokens + <bos>, <eos>, <pad>): every text
    encodes, offsets map back to characters, and nothing is downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    return tokenizer


def write_checkpoint(folder: str | Path, model, tokenizer, max_shard_size: str = "2GB") -> Path:
    """Save like a real release: config.json, safetensors (sharded with an index when larger than
    max_shard_size), tokenizer files."""
    folder = Path(folder)
    model.save_pretrained(folder, max_shard_size=max_shard_size)
    tokenizer.save_pretrained(folder)
    return folder
