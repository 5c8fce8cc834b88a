"""Recorders that observe a forward pass and hand typed records on; they never change the model's output.

Each capture kind is a package (capture/<kind>/: settings, schema, record, recorder, table builder) registered in
kind.py; `capture()` (context.py) attaches the recorders the settings turn on and undoes every hook and patch in
`finally`. The names below are imported on first use (PEP 562), so that `workbench.capture.kind` and the kinds'
settings and schemas, which the trace reader needs, load without torch.
"""

from importlib import import_module

_EXPORTS = {
    "CaptureRun": "context", "capture": "context", "moe_layers": "context",
    "CaptureSettings": "settings",
    "CaptureKind": "kind", "KindSettings": "kind", "option": "kind", "register": "kind", "registered_kinds": "kind",
    "CaptureError": "recorder", "Recorder": "recorder", "SequenceInfo": "recorder",
    "AttentionCaptureError": "attention.recorder", "AttentionRecorder": "attention.recorder",
    "full_attention_layers": "attention.recorder",
    "RoutingRecorder": "routing.recorder", "DeltaNetRecorder": "deltanet.recorder", "MTPRecorder": "mtp.recorder",
    "ExpertSaliencyRecorder": "saliency.recorder",
    "RoutingCapture": "routing.record", "AttentionCapture": "attention.record", "DeltaNetCapture": "deltanet.record",
    "MTPCapture": "mtp.record", "ExpertSaliencyCapture": "saliency.record",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
