"""The deltanet kind: delta-rule state capture (Gated DeltaNet, Kimi Delta Attention). The recorder (recorder.py)
patches the kernel globals, assembles a per-call record (assembly.py) and the needle contribution (contribution.py);
its tables are built by tables.py in schema.py's columns. The statistics and the fla backend are in
ops/state_norms/."""

from ..kind import CaptureKind, register
from .schema import (DELTANET_COLUMNS, DELTANET_CONTRIBUTION_COLUMNS, DELTANET_HEAD_SUMMARY_COLUMNS,
                     DELTANET_HEADS_COLUMNS, STATE_RECALL_COLUMNS, STATE_SNAPSHOTS_COLUMNS)
from .settings import DeltaNetSettings


def _doctor(adapter) -> DeltaNetSettings | None:
    if adapter.linear_attention is None:
        return None
    return DeltaNetSettings(deltanet_heads="per_head", state_snapshots=(-1,))


KIND = register(CaptureKind(
    name="deltanet", settings=DeltaNetSettings, doctor=_doctor,
    doc="DeltaNet state: per-token state norm, decay, beta, half-life per layer; per-head summaries; recall of spans "
        "named needle*.",
    tables={"deltanet": DELTANET_COLUMNS, "deltanet_heads": DELTANET_HEADS_COLUMNS,
            "deltanet_head_summary": DELTANET_HEAD_SUMMARY_COLUMNS, "state_recall": STATE_RECALL_COLUMNS,
            "state_snapshots": STATE_SNAPSHOTS_COLUMNS, "deltanet_contribution": DELTANET_CONTRIBUTION_COLUMNS},
))
