"""Hooks that observe a forward pass and hand tensors on; they never change the model's output."""

from .attention import AttentionCapture, AttentionCaptureError, full_attention_layers
from .context import CaptureRun, capture, moe_layers
from .routing import RoutingCapture
from .settings import CaptureSettings

__all__ = ["CaptureRun", "CaptureSettings", "RoutingCapture", "capture", "moe_layers"]
__all__ += ["AttentionCapture", "AttentionCaptureError", "full_attention_layers"]
