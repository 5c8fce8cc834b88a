"""Options of the attention kind."""

from __future__ import annotations

from dataclasses import dataclass

from ..kind import KindSettings, option


@dataclass
class AttentionSettings(KindSettings):
    """Per full-attention layer and head, for selected query rows: span masses, top-k keys, entropy, sink mass,
    mean distance; per token and head the output gate."""

    attention_stride: int = option(64, "Analyse every N-th token (positions N-1, 2N-1, ...) besides the last token "
                                   "and query spans (0: only those).", least=0)
    attention_topk: int = option(8, "Most-attended keys kept per query row and head.", least=1)

    def recorder(self):
        from .recorder import AttentionRecorder

        return AttentionRecorder(stride=self.attention_stride, top_k=self.attention_topk)
