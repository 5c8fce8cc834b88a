"""How a trace names its layers on pages and axes (the manifest's `layer_labels`): "L0 DeltaNet", "L3 attention", ...,
and "MTP" for a multi-token-prediction layer traced beside the trunk. Pure data, no torch: the writer's side
(adapters/facts.py) and the reader's side (analysis/facts.py, for manifests written before they carried labels) use
this one function."""

from __future__ import annotations

MTP_LABEL = "MTP"
KIND_NAMES = {"full_attention": "attention", "linear_attention": "DeltaNet"}


def layer_labels(kinds: list[str], linear_label: str = "DeltaNet", mtp_layers: int = 0) -> list[str]:
    """One label per layer index: the decoder layers (by layer kind), then `mtp_layers` MTP layers."""
    names = {**KIND_NAMES, "linear_attention": linear_label}
    return [f"L{i} {names.get(kind, kind)}" for i, kind in enumerate(kinds)] + [MTP_LABEL] * mtp_layers
