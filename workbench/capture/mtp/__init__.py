"""The mtp kind: the checkpoint's multi-token-prediction head run beside the trunk (recorder.py) -> the `mtp` table
and the MTP layer's rows in `routing`. The head itself is workbench/mtp/."""

from ..kind import CaptureKind, register
from .schema import MTP_COLUMNS
from .settings import MTPSettings

KIND = register(CaptureKind(
    name="mtp", settings=MTPSettings,
    doc="Run the checkpoint's multi-token-prediction head (mtp.* tensors): its draft of token t+2 per position, "
        "whether the trunk accepts it; its routing.",
    tables={"mtp": MTP_COLUMNS},
    doctor=None,  # needs a checkpoint folder with mtp.* tensors: workbench doctor checks it apart
))
