"""Kimi Delta Attention state readouts: planted-pair recall and state snapshots, from the chunk-start states.

The KDA chunk identity (`kda_chunked.py`) gives every state inside a chunk of C tokens from its start state S0:
    S_r = diag(e^{c_r}) S0 + sum_{j <= r} (E_rj o k_j) delta_j^T,   E_rj = exp(c_r - c_j) in R^K (entries <= 1)
so a readout with a fixed key khat needs no per-token state:
    S_r^T khat = S0^T (e^{c_r} o khat) + sum_{j <= r} [(E_rj o k_j) . khat] delta_j
(c_r: chunk-local cumulative per-channel log decay; delta_j: corrected values, beta included: fla's v_new).
`kda_readouts_from_chunk_states` evaluates this for all chunks at once; `naive_kda_readouts` is the fp64 token scan
every fast version must match. Recall compares the readout with a planted value exactly as the Gated DeltaNet ops do
(`naive.recall_metrics`: rel_err, cos, readout norm; NaN before the key position).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .chunked import _to_chunks
from .kda_chunked import _kda_decay_tensor
from .kda_naive import check_kda_shapes
from .naive import StateStats, check_positions, check_recall_pairs, kernel_k, recall_metrics, retention_metrics, state_spectrum


def _recall_fields(readout: torch.Tensor, target: torch.Tensor, pairs: torch.Tensor) -> dict:
    """readout [B, P, T, Hv, V], target [B, P, Hv, V] -> recall_* [B, P, T, Hv], NaN for t < key position."""
    rel_err, cos, r_norm = recall_metrics(readout, target[:, :, None])
    T = readout.shape[2]
    early = torch.arange(T, device=readout.device)[None, :] < pairs[:, :1].to(readout.device)  # [P, T]
    fields = {}
    for name, x in (("recall_rel_err", rel_err), ("recall_cos", cos), ("recall_readout_norm", r_norm)):
        fields[name] = x.masked_fill(early[None, :, :, None], math.nan)
    kept = retention_metrics(readout.permute(0, 3, 1, 2, 4), pairs[:, 0])  # [B, Hv, P, T] each
    fields["recall_retention_cos"], fields["recall_retention_ratio"] = (x.permute(0, 2, 3, 1) for x in kept)
    return fields


def naive_kda_readouts(
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    recall_pairs: torch.Tensor | None = None,
    snapshot_positions: Sequence[int] | None = None,
    use_qk_l2norm: bool = True,
) -> StateStats:
    """fp64 token scan of KDA keeping what `kda_readouts_from_chunk_states` computes.

    k: [B, T, Hk, K]; v: [B, T, Hv, V]; g: [B, T, Hv, K] per-channel log decay; beta: [B, T, Hv].
    recall_pairs: [P, 2] (key_position, value_position); snapshot_positions: token indices.
    Returns StateStats (fp64) with state_norm [B, T, Hv], recall_* [B, P, T, Hv] and snapshot_states
    [B, n_snap, Hv, K, V] (+ spectra) when asked.
    """
    check_kda_shapes(k, k, v, g, beta)
    B, T, Hv, V = v.shape
    f64 = torch.float64
    kn = kernel_k(k, Hv, use_qk_l2norm, f64)  # [B, T, Hv, K]
    v, decay, beta = v.to(f64), g.to(f64).exp(), beta.to(f64)
    S = (torch.zeros(B, Hv, kn.shape[-1], V, dtype=f64, device=v.device) if initial_state is None
         else initial_state.to(f64).clone())
    pairs = None if recall_pairs is None else check_recall_pairs(recall_pairs, T)
    positions = check_positions(snapshot_positions, T)
    norms, readouts, snaps = [], [], {}
    for t in range(T):
        S = S * decay[:, t, :, :, None]
        delta = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhkv,bhk->bhv", S, kn[:, t]))
        S = S + kn[:, t, :, :, None] * delta[..., None, :]
        norms.append(S.flatten(-2).norm(dim=-1))
        if pairs is not None:
            readouts.append(torch.einsum("bhkv,bphk->bphv", S, kn[:, pairs[:, 0]]))
        if t in positions:
            snaps[t] = S.clone()
    stats = {"state_norm": torch.stack(norms, 1)}
    if pairs is not None:
        stats.update(_recall_fields(torch.stack(readouts, 2), v[:, pairs[:, 1]], pairs))
    if positions:
        states = torch.stack([snaps[t] for t in positions], 1)
        stats["snapshot_states"] = states
        stats["snapshot_eff_rank"], stats["snapshot_top_sv"] = state_spectrum(states)
    return StateStats(**stats)


def kda_readouts_from_chunk_states(
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    chunk_states: torch.Tensor,
    v_new: torch.Tensor,
    recall_pairs: torch.Tensor | None = None,
    snapshot_positions: Sequence[int] = (),
    chunk_size: int = 64,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Recall readouts of planted pairs at every token, and states at a few positions, with no loop over chunks.

    k: [B, T, Hk, K] raw keys; v: [B, T, Hv, V] raw values (the recall targets); g: [B, T, Hv, K] per-channel
    log decay; chunk_states: [B, Hv, N, K, V] start state of each chunk; v_new: [B, T, Hv, V] corrected values
    (`chunked_kda_state_stats(..., return_chunk_states=True)` gives both).
    Returns {"recall_rel_err", "recall_cos", "recall_readout_norm": [B, P, T, Hv]} when recall_pairs is given and
    {"snapshot_states": [B, n_snap, Hv, K, V]} when positions are; every field in `dtype`.
    Memory: O(B Hv N C^2 (K + P)) for the decay tensor and the readout weights.
    """
    B, T, Hv, K = g.shape
    Hk = k.shape[2]
    if k.dim() != 4 or k.shape[:2] != (B, T) or k.shape[-1] != K or Hv % Hk:
        raise ValueError(f"k must be [B={B}, T={T}, Hk, K={K}] with Hv={Hv} a multiple of Hk, got {tuple(k.shape)}")
    kn = kernel_k(k, Hv, use_qk_l2norm, dtype)  # [B, T, Hv, K]
    k_c = _to_chunks(kn, chunk_size, dtype)  # [B, Hv, N, C, K]
    N = k_c.shape[2]
    c = _to_chunks(g, chunk_size, dtype).cumsum(-2)  # [B, Hv, N, C, K]
    delta = _to_chunks(v_new[:, :T], chunk_size, dtype)  # [B, Hv, N, C, V]
    h = chunk_states.to(dtype)
    if h.shape[:3] != (B, Hv, N):
        raise ValueError(f"chunk_states must be [B={B}, Hv={Hv}, N={N}, K, V], got {tuple(h.shape)}")
    out = {}
    pairs = None if recall_pairs is None else check_recall_pairs(recall_pairs, T)
    if pairs is not None and pairs.numel():
        khat = kn[:, pairs[:, 0]]  # [B, P, Hv, K]
        E = _kda_decay_tensor(c)  # [B, Hv, N, C(r), C(j), K]
        weights = torch.einsum("bhnrjk,bhnjk,bphk->bhnprj", E, k_c, khat)  # (E_rj o k_j) . khat
        carried = torch.einsum("bhnkv,bhnrk,bphk->bhnprv", h, c.exp(), khat)  # S0^T (e^{c_r} o khat)
        readout = carried + torch.einsum("bhnprj,bhnjv->bhnprv", weights, delta)  # [B, Hv, N, P, C, V]
        readout = readout.permute(0, 3, 2, 4, 1, 5).reshape(B, len(pairs), -1, Hv, readout.shape[-1])[:, :, :T]
        out.update(_recall_fields(readout, v[:, pairs[:, 1]].to(dtype), pairs))
    positions = check_positions(snapshot_positions, T)
    if positions:
        states = []
        for t in positions:
            n, r = divmod(t, chunk_size)
            e_r = c[:, :, n, r].exp()  # [B, Hv, K]
            decayed_keys = (c[:, :, n, r, None] - c[:, :, n, : r + 1]).exp() * k_c[:, :, n, : r + 1]  # [B, Hv, r+1, K]
            states.append(e_r[..., None] * h[:, :, n] + decayed_keys.transpose(-1, -2) @ delta[:, :, n, : r + 1])
        out["snapshot_states"] = torch.stack(states, 1)  # [B, n_snap, Hv, K, V]
    return out
