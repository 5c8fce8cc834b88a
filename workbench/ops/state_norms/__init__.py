"""Gated DeltaNet recurrent-state statistics: per-token state norms, planted-pair recall, state spectra.

`naive_state_stats` is the fp64 token-by-token reference; `chunked_state_stats` computes the same numbers at
chunk speed; `state_norms_from_chunk_states` does it loop-free from fla's chunk-start states and v_new.
"""

from .chunked import chunked_state_stats, state_norms_from_chunk_states
from .naive import GateStats, StateStats, gate_stats, kernel_k, kernel_qk, naive_state_stats, state_spectrum

__all__ = [
    "GateStats",
    "StateStats",
    "chunked_state_stats",
    "gate_stats",
    "kernel_k",
    "kernel_qk",
    "naive_state_stats",
    "state_norms_from_chunk_states",
    "state_spectrum",
]
