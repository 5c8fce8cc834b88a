"""Which state-statistics path runs for one delta-rule kernel call, and running it.

Four ways to the same per-token numbers (each tested against the fp64 scan, tests/ops/):
    "torch"          `chunked_state_stats`: a loop over 64-token chunks in PyTorch (CPU default, decode steps);
                     Kimi Delta Attention (decay per key channel): `chunked_kda_state_stats`, plus
                     `kda_readouts_from_chunk_states` for recall and snapshots;
    "fla"            `state_norms_from_chunk_states` on the chunk-start states h and corrected values v_new that the
                     model's own fla kernel computed (read by the DeltaNet recorder from fla's recursion);
    "fla-recompute"  the same on states recomputed with fla's recursion on fp32 WY inputs (the model's kernel did
                     not run fla's recursion: transformers' torch fallback, another fla backend).
"auto" takes fla for Gated DeltaNet prefill on CUDA when fla imports and calibrates (fla_backend.fla_for).

Shapes: query, key [B, T, Hk, K]; value [B, T, Hv, V]; g [B, T, Hv] (KDA: [B, T, Hv, K]); beta [B, T, Hv];
initial_state [B, Hv, K, V] or None; pairs [P, 2] or None; snaps: token indices inside the call.
"""

from __future__ import annotations

import dataclasses

import torch

from . import fla_states
from .chunked import chunked_state_stats, state_norms_from_chunk_states
from .fla_backend import fla_for
from .kda_chunked import chunked_kda_state_stats
from .kda_readout import kda_readouts_from_chunk_states


def state_path(requested: str, decay: str, kind: str, device: torch.device) -> str:
    """The path for one kernel call: requested "auto" | "fla" | "torch"; decay "per_head" (Gated DeltaNet) or
    "per_key_channel" (KDA); kind "chunk" (prefill) or "recurrent" (a cached decode step). Raises where "fla" was
    asked for and cannot run."""
    if decay == "per_key_channel":  # fla's chunk states are read for the gated delta rule only
        if requested == "fla":
            raise RuntimeError("deltanet_path='fla' reads Gated DeltaNet chunk states; KDA runs the torch path")
        return "torch"
    if kind != "chunk" or requested == "torch":
        return "torch"
    fwd_h, detail = fla_for(device)
    if fwd_h is None:
        if requested == "fla":
            raise RuntimeError(f"deltanet_path='fla' but {detail}")
        return "torch"
    return "fla"


def call_state_stats(query, key, value, g, beta, initial_state, *, decay: str, path: str, pairs, snaps: list[int],
                     use_qk_l2norm: bool, want_v_new: bool, states=None):
    """(StateStats of one call on its device: state_norm [B, T, H], recall and snapshots where asked; the corrected
    values v_new [B, T, Hv, V] when `want_v_new`, else None). states: (kernel keys, h, v_new, chunk size) from the
    model's own fla recursion (path "fla")."""
    if decay == "per_key_channel":  # KDA: norms by the chunk identity, readouts from its chunk states
        chunk_size, readouts = min(64, value.shape[1]), pairs is not None or bool(snaps)
        stats = chunked_kda_state_stats(query, key, value, g, beta, initial_state, chunk_size=chunk_size,
                                        use_qk_l2norm=use_qk_l2norm, return_chunk_states=readouts or want_v_new)
        v_new = stats.v_new if want_v_new else None
        if not readouts:
            return stats, v_new
        extra = kda_readouts_from_chunk_states(key, value, g, stats.chunk_states, stats.v_new, pairs, snaps,
                                               chunk_size=chunk_size, use_qk_l2norm=use_qk_l2norm)
        return dataclasses.replace(stats, **extra), v_new
    if states is not None:
        kernel_keys, h, v_new, chunk_size = states
        stats = state_norms_from_chunk_states(kernel_keys, g, h.transpose(1, 2), v_new, value, pairs, snaps,
                                              chunk_size=chunk_size, use_qk_l2norm=False, snapshot_spectrum=False)
        return stats, v_new if want_v_new else None
    if path == "fla-recompute":
        fwd_h, g_scale = fla_for(value.device)
        chunk_states, v_new = fla_states.chunk_states_from_kernel(fwd_h, key, value, g, beta, initial_state, g_scale,
                                                                  use_qk_l2norm)
        stats = state_norms_from_chunk_states(key, g, chunk_states, v_new, value, pairs, snaps,
                                              chunk_size=fla_states.CHUNK_SIZE, use_qk_l2norm=use_qk_l2norm,
                                              snapshot_spectrum=False)
        return stats, v_new if want_v_new else None
    stats = chunked_state_stats(query, key, value, g, beta, initial_state, pairs, snaps,
                                chunk_size=min(64, value.shape[1]), use_qk_l2norm=use_qk_l2norm,
                                snapshot_spectrum=False, return_chunk_states=want_v_new)
    return stats, stats.v_new if want_v_new else None
