"""Architecture adapters: one file per family (each registers one Adapter), one registry (registry.py).

Every module of this package is imported here, so adding a family is adding one file.
"""

import importlib
import pkgutil

from .base import Adapter, AttentionSite, KernelArguments, LinearAttentionSite, RouterSite, split_query_gate
from .layer_kinds import FULL_ATTENTION, LINEAR_ATTENTION, all_full_attention, full_attention_interval, layer_types_field
from .registry import (
    UnsupportedArchitecture,
    adapter_for_config,
    families_markdown,
    get_adapter,
    register,
    registered_adapters,
    supported_architectures,
    supported_model_types,
    unregister,
)

_INFRASTRUCTURE = {"base", "facts", "layer_kinds", "registry", "tiny", "upstream"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE:
        importlib.import_module(f"{__name__}.{_module.name}")  # each family file calls register() once

__all__ = [
    "Adapter",
    "AttentionSite",
    "FULL_ATTENTION",
    "KernelArguments",
    "LINEAR_ATTENTION",
    "LinearAttentionSite",
    "RouterSite",
    "UnsupportedArchitecture",
    "adapter_for_config",
    "all_full_attention",
    "families_markdown",
    "full_attention_interval",
    "get_adapter",
    "layer_types_field",
    "register",
    "registered_adapters",
    "split_query_gate",
    "supported_architectures",
    "supported_model_types",
    "unregister",
]
