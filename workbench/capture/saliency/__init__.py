"""The expert_saliency kind: per routed expert its selections, gate, output norm and REAP; the shared expert's share
(recorder.py, the grouped_mm tap in expert_tap.py) -> the `expert_saliency` and `shared_expert_share` tables."""

from ..kind import CaptureKind, register
from .schema import EXPERT_SALIENCY_COLUMNS, SHARED_EXPERT_SHARE_COLUMNS
from .settings import SaliencySettings


def _doctor(adapter) -> SaliencySettings | None:
    return SaliencySettings() if adapter.router is not None else None


KIND = register(CaptureKind(
    name="expert_saliency", settings=SaliencySettings, doctor=_doctor,
    doc="Per MoE layer and expert: selections, mean gate, mean ||expert output||, REAP; the shared expert's share "
        "(tables expert_saliency, shared_expert_share).",
    tables={"expert_saliency": EXPERT_SALIENCY_COLUMNS, "shared_expert_share": SHARED_EXPERT_SHARE_COLUMNS},
    legacy_defaults={"expert_saliency_path": "grouped"},  # the off default before "auto" existed
))
