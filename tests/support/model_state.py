"""What a capture could leave behind on a model, as one comparable value (tests assert it is unchanged after a
capture exits, normally or by an error)."""

from __future__ import annotations

import sys

import torch

from workbench.adapters import LINEAR_ATTENTION, adapter_for_config
from workbench.capture.saliency.expert_tap import GROUPED_LINEAR, MOE_MODULE


def kernel_globals(model: torch.nn.Module, adapter=None) -> dict[tuple[str, str], object]:
    """(modeling module, global name) -> the object bound there, for every linear-attention kernel the adapter names
    in the modeling files of the model's linear-attention blocks (None where the file has no such global)."""
    adapter = adapter or adapter_for_config(model.config)
    if adapter.linear_attention is None:
        return {}
    files = {type(m).__module__ for m in adapter.layers_of_kind(model, LINEAR_ATTENTION).values()}
    return {(file, name): getattr(sys.modules[file], name, None) for file in sorted(files)
            for name, _ in adapter.linear_attention.kernels()}


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def model_state(model: torch.nn.Module, adapter=None) -> tuple:
    """(hook count, attention implementation, kernel globals, transformers' grouped-linear global): everything
    capture patches."""
    moe = sys.modules[MOE_MODULE]
    return (hook_count(model), model.config._attn_implementation, kernel_globals(model, adapter),
            getattr(moe, GROUPED_LINEAR))
