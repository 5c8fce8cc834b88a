"""Architecture adapters: one data file per family, one registry (see registry.py)."""

from . import qwen3_5_moe, qwen3_next  # noqa: F401  (each file registers its adapter once)
from .base import FULL_ATTENTION, LINEAR_ATTENTION, Adapter
from .registry import (
    UnsupportedArchitecture,
    adapter_for_config,
    get_adapter,
    register,
    supported_architectures,
)

__all__ = [
    "Adapter",
    "FULL_ATTENTION",
    "LINEAR_ATTENTION",
    "UnsupportedArchitecture",
    "adapter_for_config",
    "get_adapter",
    "register",
    "supported_architectures",
]
