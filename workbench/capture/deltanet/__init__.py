"""Delta-rule state capture (Gated DeltaNet, Kimi Delta Attention): the recorder (recorder.py), the per-call record
it assembles (assembly.py) and the needle contribution (contribution.py); it patches kernel globals with
capture.recorder.KernelPatch. The statistics themselves and the fla backend are in ops/state_norms/."""

from ..recorder import KernelPatch
from ...ops.state_norms.fla_backend import fla_chunk_module, fla_for, kernel_states
from .assembly import AGGREGATES, PER_HEAD, SEGMENT_SUMS
from .recorder import DeltaNetRecorder, KernelCall, deltanet_layers, needle_recall_pairs

__all__ = ["AGGREGATES", "PER_HEAD", "SEGMENT_SUMS", "DeltaNetRecorder", "KernelCall", "KernelPatch", "deltanet_layers",
           "fla_chunk_module", "fla_for", "kernel_states", "needle_recall_pairs"]
