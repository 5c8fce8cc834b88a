"""The routing capture kind: forward hooks on MoE routers and shared-expert gates (recorder.py) -> the `routing` and
`router_logits` tables (tables.py, schema.py)."""

from ..kind import CaptureKind, register
from .schema import ROUTER_LOGITS_COLUMNS, ROUTING_COLUMNS
from .settings import RoutingSettings


def _doctor(adapter) -> RoutingSettings | None:
    return RoutingSettings(router_logits=True) if adapter.router is not None else None


KIND = register(CaptureKind(
    name="routing", settings=RoutingSettings, default_on=True, doctor=_doctor,
    doc="Expert routing per MoE layer and token: top-k ids and weights, entropy, top-k mass, margin, shared gate.",
    tables={"routing": ROUTING_COLUMNS, "router_logits": ROUTER_LOGITS_COLUMNS},
))
