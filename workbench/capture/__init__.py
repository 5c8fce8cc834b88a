"""Recorders that observe a forward pass and hand typed records on; they never change the model's output.

One protocol for every capture kind (recorder.py); `capture()` (context.py) attaches the recorders the settings
turn on and undoes every hook and patch in `finally`.
"""

from .routing import RoutingRecorder  # noqa: I001  (registration order: routing, attention, deltanet)
from .attention import AttentionCaptureError, AttentionRecorder, full_attention_layers
from .context import CaptureRun, capture, moe_layers
from .deltanet import DeltaNetRecorder
from .mtp import MTPRecorder
from .saliency import ExpertSaliencyRecorder
from .records import AttentionCapture, DeltaNetCapture, ExpertSaliencyCapture, MTPCapture, RoutingCapture
from .recorder import RECORDER_KINDS, CaptureError, Recorder, SequenceInfo, recorder_kind, recorders_for
from .settings import CaptureSettings

__all__ = [
    "AttentionCapture",
    "AttentionCaptureError",
    "AttentionRecorder",
    "CaptureError",
    "CaptureRun",
    "CaptureSettings",
    "DeltaNetCapture",
    "DeltaNetRecorder",
    "ExpertSaliencyCapture",
    "ExpertSaliencyRecorder",
    "MTPCapture",
    "MTPRecorder",
    "RECORDER_KINDS",
    "Recorder",
    "RoutingCapture",
    "RoutingRecorder",
    "SequenceInfo",
    "capture",
    "full_attention_layers",
    "moe_layers",
    "recorder_kind",
    "recorders_for",
]
