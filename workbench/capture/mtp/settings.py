"""Options of the mtp kind (none beyond its switch)."""

from __future__ import annotations

from dataclasses import dataclass

from ..kind import KindSettings


@dataclass
class MTPSettings(KindSettings):
    """Run the checkpoint's multi-token-prediction head (its `mtp.*` tensors) beside the trunk: per position its draft
    of token t+2 and whether the trunk would accept it; the MTP layer's routing under layer num_hidden_layers."""

    def recorder(self):
        from .recorder import MTPRecorder

        return MTPRecorder()
