"""The attribution kind: direct logit attribution of a target token at chosen positions to the embedding, every
layer's token mixer (per head where its output projection allows), shared and routed experts (recorder.py) -> the
`logit_attribution` table."""

from ..kind import CaptureKind, register
from .schema import LOGIT_ATTRIBUTION_COLUMNS
from .settings import AttributionSettings

KIND = register(CaptureKind(
    name="attribution", settings=AttributionSettings,
    doc="Direct logit attribution of the tokens of a span (default 'answer') or of --attribution-target-id at the "
        "last position, to the embedding, heads, shared and routed experts (table logit_attribution).",
    tables={"logit_attribution": LOGIT_ATTRIBUTION_COLUMNS},
    doctor=lambda adapter: AttributionSettings(attribution_target_id=0),
))
