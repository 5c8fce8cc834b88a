"""Options of the expert_saliency kind."""

from __future__ import annotations

from dataclasses import dataclass

from ..kind import KindSettings, option

SALIENCY_PATHS = ("auto", "tap", "grouped", "loop")


@dataclass
class SaliencySettings(KindSettings):
    """Per MoE layer and routed expert: selections, mean gate weight, mean ||expert output||, REAP; per layer the shared
    expert's share of the MoE output."""

    expert_saliency_path: str = option(
        "auto", "How each routed expert's own output is obtained: auto (tap where the experts run grouped_mm, else "
        "grouped), tap (read inside the model's grouped_mm forward: no expert runs twice), grouped (recomputed with "
        "the experts' own implementation, batched) or loop (recomputed by the per-expert eager loop).",
        choices=SALIENCY_PATHS)

    def recorder(self):
        from .recorder import ExpertSaliencyRecorder

        return ExpertSaliencyRecorder(path=self.expert_saliency_path)
