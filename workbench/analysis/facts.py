"""A run's family facts as the pages and analyses use them: read from its manifest (adapters/facts.py writes them),
never from the raw model config, whose keys differ by family.

Runs written before the manifest carried `layer_labels`, `top_k` and `heads` (the shipped datasets among them) get
them derived here, once: top-k and head counts from the model config stored in the manifest, labels from the layer
kinds. This is the one place that reads those config keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..trace.layer_labels import MTP_LABEL, layer_labels

FULL, LINEAR = "full_attention", "linear_attention"


@dataclass(frozen=True)
class RunFacts:
    """layer_kinds [L]; layer_labels: one per layer index (decoder layers, then an MTP layer when traced);
    num_experts, top_k: None without a router; heads: {layer kind: {"query"/"key_value" or "key"/"value": n}}."""

    layer_kinds: list[str]
    layer_labels: list[str]
    num_experts: int | None
    top_k: int | None
    heads: dict = field(default_factory=dict)

    def label(self, layer: int) -> str:
        """'L3 attention', 'MTP' for the MTP layer, 'L{n}' past the known layers."""
        layer = int(layer)
        return self.layer_labels[layer] if 0 <= layer < len(self.layer_labels) else f"L{layer}"

    @property
    def mtp_layers(self) -> tuple[int, ...]:
        """Layer indices labelled MTP (routing rows of an MTP layer sit under index num_hidden_layers)."""
        return tuple(i for i, label in enumerate(self.layer_labels) if label == MTP_LABEL)

    @property
    def trunk_layers(self) -> tuple[int, ...]:
        """The decoder layers' indices: what a per-layer aggregate covers unless the MTP layer is asked for."""
        return tuple(range(len(self.layer_kinds)))

    @property
    def max_heads(self) -> int:
        """The most heads any layer kind has (query heads of attention, value heads of linear attention)."""
        counts = [h.get("query", 0) for k, h in self.heads.items() if k == FULL]
        counts += [h.get("value", 0) for k, h in self.heads.items() if k == LINEAR]
        return max(counts, default=0)


def run_facts(manifest: dict) -> RunFacts:
    """The RunFacts of one run manifest (derived for runs written before the manifest carried them)."""
    kinds = list(manifest.get("layer_kinds", []))
    if "heads" in manifest:
        return RunFacts(kinds, list(manifest["layer_labels"]), manifest.get("num_experts"), manifest.get("top_k"),
                        dict(manifest["heads"]))
    config = manifest.get("model", {}).get("config", {})
    mtp = 1 if manifest.get("capture", {}).get("mtp") else 0
    linear_label = "KDA" if manifest.get("family") == "kimi_linear" else "DeltaNet"
    top_k = config.get("num_experts_per_tok", config.get("num_experts_per_token"))
    heads = {}
    if FULL in kinds:
        heads[FULL] = {"query": int(config.get("num_attention_heads") or 0),
                       "key_value": int(config.get("num_key_value_heads") or 0)}
    if LINEAR in kinds:
        heads[LINEAR] = {"key": int(config.get("linear_num_key_heads") or config.get("linear_num_heads") or 0),
                         "value": int(config.get("linear_num_value_heads") or config.get("linear_num_heads") or 0)}
    return RunFacts(kinds, layer_labels(kinds, linear_label, mtp), manifest.get("num_experts"),
                    None if top_k is None or not manifest.get("moe_layers") else int(top_k), heads)

