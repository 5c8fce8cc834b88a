"""One registry of adapters keyed by `config.model_type`. Each family file registers itself once; every module of
this package is imported by `adapters/__init__.py`, so a new family is one new file here and nothing else."""

from __future__ import annotations

from .base import Adapter

_BY_MODEL_TYPE: dict[str, Adapter] = {}
_BY_NAME: dict[str, Adapter] = {}


class UnsupportedArchitecture(ValueError):
    """The model's config names a model_type (or architecture) that no adapter serves."""


def register(adapter: Adapter) -> Adapter:
    """Add a family; a name, model_type or architecture that is already registered is a bug and raises."""
    keys = [*adapter.model_types, *adapter.wrapper_model_types]
    taken = [key for key in keys if key in _BY_MODEL_TYPE]
    if adapter.name in _BY_NAME or adapter.architecture in _BY_NAME or taken:
        raise ValueError(f"adapter {adapter.name!r} is already registered (or its model_types {taken} are)")
    for key in keys:
        _BY_MODEL_TYPE[key] = adapter
    _BY_NAME[adapter.name] = _BY_NAME[adapter.architecture] = adapter
    return adapter


def unregister(adapter: Adapter) -> None:
    """Remove a family (tests that register a toy family clean up with this)."""
    for table in (_BY_MODEL_TYPE, _BY_NAME):
        for key in [k for k, v in table.items() if v is adapter]:
            del table[key]


def supported_model_types() -> list[str]:
    return sorted(_BY_MODEL_TYPE)


def supported_architectures() -> list[str]:
    return sorted({a.architecture for a in _BY_NAME.values()})


def registered_adapters() -> list[Adapter]:
    return sorted({id(a): a for a in _BY_NAME.values()}.values(), key=lambda a: a.name)


def _unsupported(what: str) -> UnsupportedArchitecture:
    return UnsupportedArchitecture(f"{what} is not supported; supported model_types: {', '.join(supported_model_types())}")


def get_adapter(name: str) -> Adapter:
    """By family name, architecture class name or model_type."""
    adapter = _BY_NAME.get(name) or _BY_MODEL_TYPE.get(name)
    if adapter is None:
        raise _unsupported(f"model {name!r}")
    return adapter


def adapter_for_config(config) -> Adapter:
    """The adapter for a loaded HF config, by `config.model_type` (a multimodal wrapper resolves to the family of
    its text config). One line naming what was asked and listing what is supported when none serves it."""
    model_type = getattr(config, "model_type", None)
    adapter = _BY_MODEL_TYPE.get(model_type)
    if adapter is None:
        architectures = getattr(config, "architectures", None) or []
        named = f" ({', '.join(architectures)})" if architectures else ""
        raise _unsupported(f"model_type {model_type!r}{named}")
    return adapter


def families_markdown() -> str:
    """The table of supported families, from the registry (the docs' families page is generated from it)."""
    lines = ["| family | config `model_type` | loads as | captures |", "|---|---|---|---|"]
    for adapter in registered_adapters():
        types = ", ".join(f"`{t}`" for t in adapter.model_types)
        if adapter.wrapper_model_types:
            types += " (multimodal wrapper " + ", ".join(f"`{t}`" for t in adapter.wrapper_model_types) + ": text only)"
        lines.append(f"| {adapter.name} | {types} | `{adapter.architecture}` | {adapter.captures} |")
    return "\n".join(lines)
