"""The attention kind: what each gated full-attention head retrieves, without T x T memory. The recording attention
function (function.py) and output-gate hooks (recorder.py) -> the `attention` and `attention_gate` tables."""

from ..kind import CaptureKind, register
from .schema import ATTENTION_COLUMNS, ATTENTION_GATE_COLUMNS
from .settings import AttentionSettings


def _doctor(adapter) -> AttentionSettings | None:
    return AttentionSettings(attention_stride=4) if adapter.attention is not None else None


KIND = register(CaptureKind(
    name="attention", settings=AttentionSettings, doctor=_doctor,
    doc="Attention recall of the full-attention layers: span masses, top-k keys, entropy, sink, distance per analysed "
        "query and head; output gates.",
    tables={"attention": ATTENTION_COLUMNS, "attention_gate": ATTENTION_GATE_COLUMNS},
))
