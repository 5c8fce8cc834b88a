"""Delta-rule state capture (Gated DeltaNet, Kimi Delta Attention): the recorder (recorder.py) and the fla probes it
works through (patch.py); it patches kernel globals with capture.recorder.KernelPatch."""

from ..recorder import KernelPatch
from .patch import fla_chunk_module, fla_for, kernel_states
from .recorder import AGGREGATES, PER_HEAD, SEGMENT_SUMS, DeltaNetRecorder, KernelCall, deltanet_layers, needle_recall_pairs

__all__ = ["AGGREGATES", "PER_HEAD", "SEGMENT_SUMS", "DeltaNetRecorder", "KernelCall", "KernelPatch", "deltanet_layers",
           "fla_chunk_module", "fla_for", "kernel_states", "needle_recall_pairs"]
