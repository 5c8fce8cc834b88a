"""Options of the routing kind."""

from __future__ import annotations

from dataclasses import dataclass

from ..kind import KindSettings, option


@dataclass
class RoutingSettings(KindSettings):
    """Per MoE layer and token: the top-k expert ids and weights and the router's summaries (entropy, top-k mass,
    margin, shared-expert gate)."""

    router_logits: bool = option(False, "Also store the full router logits, tokens x experts (table router_logits; "
                                 "large: E x 2 bytes per token and layer).")

    def recorder(self):
        from .recorder import RoutingRecorder

        return RoutingRecorder(keep_logits=self.router_logits)
