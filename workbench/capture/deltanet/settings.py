"""Options of the deltanet kind."""

from __future__ import annotations

from dataclasses import dataclass

from ..kind import KindSettings, option


@dataclass
class DeltaNetSettings(KindSettings):
    """Per DeltaNet layer and token: head-aggregated state norm, decay, beta, half-life; per head a per-sequence
    summary; state recall of planted pairs (spans named needle*) and the needle contribution."""

    deltanet_heads: str = option("aggregate", "aggregate (per-head rows only every --deltanet-head-stride tokens) or "
                                 "per_head (per-head rows at every token).", choices=("aggregate", "per_head"))
    deltanet_head_stride: int = option(0, "Per-head rows at positions divisible by N (0: never; ignored with "
                                       "per_head).", least=0)
    state_snapshots: tuple = option((), "Token position (negative: from the end of the prefill) whose per-head state "
                                    "spectrum (effective rank, top singular value) to keep; repeatable.",
                                    item=int, flag="--state-snapshot")
    deltanet_path: str = option("auto", "auto (fla on CUDA when importable and calibrated, else the PyTorch chunk "
                                "loop), fla or torch.", choices=("auto", "fla", "torch"))

    def check_environment(self, device: str | None) -> None:
        """deltanet_path='fla' needs flash-linear-attention and a CUDA device."""
        if self.deltanet_path != "fla":
            return
        from ...ops.state_norms.fla_backend import fla_installed

        if not fla_installed():
            raise ValueError("--deltanet-path fla needs flash-linear-attention (pip install flash-linear-attention); "
                             "--deltanet-path torch runs anywhere")
        if device is not None and not str(device).startswith("cuda"):
            raise ValueError(f"--deltanet-path fla runs on CUDA only, got --device {device}")

    def recorder(self):
        from .recorder import DeltaNetRecorder

        return DeltaNetRecorder(self)
