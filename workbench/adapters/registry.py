"""One registry of adapters keyed by HF architecture name. Each family file registers itself once."""

from __future__ import annotations

from .base import Adapter

_ADAPTERS: dict[str, Adapter] = {}


class UnsupportedArchitecture(ValueError):
    """The model's architecture has no adapter."""


def register(adapter: Adapter) -> Adapter:
    """Add an adapter; registering the same architecture twice is a bug and raises."""
    if adapter.architecture in _ADAPTERS:
        raise ValueError(f"adapter for {adapter.architecture!r} is already registered")
    _ADAPTERS[adapter.architecture] = adapter
    return adapter


def supported_architectures() -> list[str]:
    return sorted(_ADAPTERS)


def get_adapter(architecture: str) -> Adapter:
    try:
        return _ADAPTERS[architecture]
    except KeyError:
        raise UnsupportedArchitecture(
            f"architecture {architecture!r} is not supported; supported: {', '.join(supported_architectures())}"
        ) from None


def adapter_for_config(config) -> Adapter:
    """The adapter for a loaded HF config (by `config.architectures[0]`)."""
    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        raise UnsupportedArchitecture(
            f"config (model_type {getattr(config, 'model_type', '?')!r}) names no architecture; "
            f"supported: {', '.join(supported_architectures())}"
        )
    return get_adapter(architectures[0])
