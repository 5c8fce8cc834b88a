"""Options of the attribution kind."""

from __future__ import annotations

from dataclasses import dataclass

from ..kind import KindSettings, option


@dataclass
class AttributionSettings(KindSettings):
    """Direct logit attribution: the logit (or logit difference against a foil) of a target token at chosen
    positions, split into the embedding, every layer's token mixer (per head where its output projection allows),
    every MoE layer's shared expert and each routed expert chosen there (capture/attribution/recorder.py)."""

    attribution_span: str = option("answer", "Attribute the tokens of the prompt's span with this name, teacher "
                                   "forced: the target at position p is the span's token p + 1.")
    attribution_target_id: int = option(-1, "Instead of a span: this token id as the target at the prompt's last "
                                        "position (-1: use the span).", least=-1)
    attribution_foil_id: int = option(-1, "Attribute the logit difference target - foil for this token id (-1: the "
                                      "target's logit alone).", least=-1)

    def recorder(self):
        from .recorder import AttributionRecorder

        return AttributionRecorder(self)
