"""What a capture records. A dataclass so the run manifest can store and restore it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class CaptureSettings:
    """routing:        per MoE layer and token, top-k ids/weights and router summaries.
    router_logits:     also keep the full router logits [tokens, experts] (large: E x 2 bytes per token/layer).
    """

    routing: bool = True
    router_logits: bool = False

    def __post_init__(self):
        if self.router_logits and not self.routing:
            raise ValueError("router_logits=True needs routing=True")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CaptureSettings":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown capture settings: {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)
