"""Options of the final_norm test kind."""

from dataclasses import dataclass

from workbench.capture.kind import KindSettings, option


@dataclass
class FinalNormSettings(KindSettings):
    final_norm_stride: int = option(1, "Keep the norm of every N-th token (positions 0, N, 2N, ...).", least=1)

    def recorder(self):
        from .recorder import FinalNormRecorder

        return FinalNormRecorder(self.final_norm_stride)
