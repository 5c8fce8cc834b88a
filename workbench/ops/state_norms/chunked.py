"""Per-token Gated DeltaNet state statistics at chunk speed, without materialising per-token states.

Inside a chunk of C tokens with start state S0, c_r the cumulative log decay up to token r,
D_rj = exp(c_r - c_j) for j <= r (else 0), K the chunk keys (rows k_j), Delta the corrected values
(rows delta_j, beta included: `v_new` in transformers' and fla's chunk kernels):
    S_r = e^{c_r} S0 + sum_{j<=r} D_rj k_j delta_j^T
    ||S_r||_F^2 = e^{2c_r} ||S0||^2 + 2 e^{c_r} (D b)_r + rowsum((D M) o D)_r,
        b_j = k_j^T S0 delta_j,  M = (K K^T) o (Delta Delta^T)
    S_r^T khat = e^{c_r} S0^T khat + sum_{j<=r} D_rj (k_j . khat) delta_j
`chunked_state_stats` runs transformers' chunk algorithm (Python loop over chunks carrying S0) and applies
the identity chunk by chunk; `state_norms_from_chunk_states` applies it to all chunks at once, given the
chunk-start states and v_new that fla's forward already produces (the GPU path).
Internal layout: [B, Hv, N, C, ...] (N chunks of C tokens), as in transformers.
Precision: norm^2 is a sum of terms as large as ||S0||^2, so the fp32 absolute error of a norm is about
1e-7 ||S0||^2 / ||S_r||; when a state much larger than the current one is being erased (e.g. a big initial
state overwritten along few key directions) the norm's own relative error grows. Use dtype=torch.float64 there.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from . import triton_norms
from .naive import (StateStats, check_positions, check_recall_pairs, kernel_qk, l2norm, recall_metrics, retention_metrics,
                    state_spectrum)


def _to_chunks(x: torch.Tensor, chunk_size: int, dtype) -> torch.Tensor:
    """[B, T, H, *rest] -> [B, H, N, C, *rest], zero-padded at the end to a multiple of C."""
    x = x.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format)  # one copy: cast and transpose
    pad = (-x.shape[2]) % chunk_size
    if pad:
        x = F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad))
    return x.reshape(*x.shape[:2], -1, chunk_size, *x.shape[3:])


def _decay_matrix(c: torch.Tensor) -> torch.Tensor:
    """c: [..., C] cumulative log decay -> D: [..., C, C], D_rj = exp(c_r - c_j) for j <= r, else 0."""
    diff = c[..., :, None] - c[..., None, :]
    upper = torch.ones(c.shape[-1], c.shape[-1], dtype=torch.bool, device=c.device).triu(1)
    return diff.masked_fill(upper, -math.inf).exp()  # -inf before exp: no overflow above the diagonal


def _chunk_identity(c, D, K, KK, h, delta, khat=None, k_dot_khat=None):
    """The chunk identity for any leading dims [...] (one chunk, or all N chunks at once).

    c: [..., C]; D: [..., C, C]; h: [..., K, V] chunk start state; delta: [..., C, V]; K: [..., C, K] and
    KK: [..., C, C] may instead broadcast to those (grouped heads: one key head for G value heads);
    khat: broadcastable to [..., P, K]; k_dot_khat: broadcastable to [..., C, P].
    Returns norm^2 [..., C] (clamped >= 0) and the readouts S_r^T khat [..., P, C, V] (or None).
    """
    ec = c.exp()
    s0_sq = torch.linalg.vector_norm(h, dim=(-2, -1)).square()[..., None]  # [..., 1], no h-sized temporary
    b = (K * (delta @ h.transpose(-1, -2))).sum(-1)  # [..., C]  b_j = k_j^T S0 delta_j; K only broadcast
    M = KK * (delta @ delta.transpose(-1, -2))  # [..., C, C]
    norm_sq = ec.square() * s0_sq + 2 * ec * (D @ b[..., None]).squeeze(-1) + ((D @ M) * D).sum(-1)
    readout = None
    if khat is not None:
        carried = (khat @ h)[..., :, None, :] * ec[..., None, :, None]  # [..., P, C, V]
        written = D[..., None, :, :] @ (k_dot_khat.transpose(-1, -2)[..., None] * delta[..., None, :, :])
        readout = carried + written
    return norm_sq.clamp_min(0), readout


def _state_at(h, c_r, D_r, K, delta):
    """S_r = e^{c_r} h + K^T (D_r o delta). h: [..., K, V]; c_r: [...]; D_r: [..., C]; K: [..., C, K]."""
    return c_r.exp()[..., None, None] * h + K.transpose(-1, -2) @ (D_r[..., None] * delta)


def _recall_inputs(kn, v, pairs, dtype):
    """Kernel keys kn [B, T, H, K] (H = Hv, or Hk for grouped heads) -> khat [B, H, P, K]; v [B, T, Hv, V] ->
    targets [B, Hv, P, V]; both in `dtype`."""
    return kn[:, pairs[:, 0]].to(dtype).transpose(1, 2), v[:, pairs[:, 1]].to(dtype).transpose(1, 2)


def _assemble(norm_sq, readout, seq_len, pairs, v_target) -> dict:
    """norm_sq [B, H, N, C], readout [B, H, N, P, C, V] -> StateStats fields in [B, T, H] / [B, P, T, H]."""
    B, H = norm_sq.shape[:2]
    out = {"state_norm": norm_sq.sqrt().reshape(B, H, -1)[..., :seq_len].transpose(1, 2)}
    if readout is not None:
        P, V = readout.shape[3], readout.shape[-1]
        r = readout.permute(0, 1, 3, 2, 4, 5).reshape(B, H, P, -1, V)[..., :seq_len, :]  # [B, H, P, T, V]
        early = torch.arange(seq_len, device=r.device)[None, :] < pairs[:, :1].to(r.device)  # [P, T]
        metrics = recall_metrics(r, v_target[..., None, :])  # each [B, H, P, T]
        for name, x in zip(("recall_rel_err", "recall_cos", "recall_readout_norm"), metrics):
            out[name] = x.permute(0, 2, 3, 1).masked_fill(early[None, :, :, None], math.nan)
        kept = retention_metrics(r, pairs[:, 0])  # [B, H, P, T] each
        out["recall_retention_cos"], out["recall_retention_ratio"] = (x.permute(0, 2, 3, 1) for x in kept)
    return out


def _with_spectrum(out: dict, states: torch.Tensor, spectrum: bool = True) -> dict:
    """Adds snapshot_states [B, n_snap, Hv, K, V] and, when `spectrum`, their effective rank and top singular value
    (an SVD per head: ~80 ms for 32 heads of 128 x 128 on an H200, so capture defers it to the host)."""
    out["snapshot_states"] = states
    if spectrum:
        out["snapshot_eff_rank"], out["snapshot_top_sv"] = state_spectrum(states)
    return out


def chunked_state_stats(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    recall_pairs: torch.Tensor | None = None,
    snapshot_positions: Sequence[int] | None = None,
    chunk_size: int = 64,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
    return_chunk_states: bool = False,
    snapshot_spectrum: bool = True,
) -> StateStats:
    """Chunked gated delta rule with exact per-token state norms and recall; same contract as
    `naive_state_stats` (shapes: q, k [B, T, Hk, K]; v [B, T, Hv, V]; g, beta [B, T, Hv]; initial_state
    [B, Hv, K, V]; recall_pairs [P, 2]), computed in `dtype`.

    The only sequential work is the loop over T / chunk_size chunks carrying the state; decay matrices, the UT
    solve and key Gram matrices are batched over all chunks before it. Padding tokens (T not a multiple of C)
    get g = 0, beta = 0 and leave the state unchanged. snapshot_spectrum=False keeps snapshot_states but skips
    their SVDs (eff_rank, top_sv stay None). return_chunk_states adds chunk_states [B, Hv, N, K, V]
    (start state of each chunk) and v_new [B, T, Hv, V], the inputs of `state_norms_from_chunk_states`.
    """
    B, T, Hv, V = v.shape
    qn, kn = kernel_qk(q, k, Hv, use_qk_l2norm, dtype)  # [B, T, Hv, K]
    q_c, k_c, v_c = (_to_chunks(x, chunk_size, dtype) for x in (qn, kn, v))  # [B, H, N, C, *]
    g_c, beta_c = (_to_chunks(x, chunk_size, dtype) for x in (g, beta))  # [B, H, N, C]
    N = q_c.shape[2]
    pairs = None if recall_pairs is None else check_recall_pairs(recall_pairs, T)
    positions = check_positions(snapshot_positions, T)

    c = g_c.cumsum(-1)  # [B, H, N, C]
    D = _decay_matrix(c)  # [B, H, N, C, C]
    KK = k_c @ k_c.transpose(-1, -2)
    k_beta = k_c * beta_c[..., None]
    ut_system = (k_beta @ k_c.transpose(-1, -2)) * D  # unit lower triangular: the diagonal is ignored
    new_values = torch.linalg.solve_triangular(ut_system, v_c * beta_c[..., None], upper=False, unitriangular=True)
    k_cumdecay = torch.linalg.solve_triangular(ut_system, k_beta * c.exp()[..., None], upper=False, unitriangular=True)
    intra_attn = (q_c @ k_c.transpose(-1, -2)) * D
    q_decayed = q_c * c.exp()[..., None]
    k_to_end = k_c * (c[..., -1:] - c).exp()[..., None]
    chunk_decay = c[..., -1].exp()[..., None, None]  # [B, H, N, 1, 1]
    khat = k_dot_khat = v_target = None
    if pairs is not None:
        khat, v_target = _recall_inputs(kn, v, pairs, dtype)
        k_dot_khat = k_c @ khat[:, :, None].transpose(-1, -2)  # [B, H, N, C, P]

    S = (torch.zeros(B, Hv, k_c.shape[-1], V, dtype=dtype, device=v.device) if initial_state is None
         else initial_state.to(dtype))
    outs, norm_sq, readouts, starts, deltas, snaps = [], [], [], [], [], {}
    for i in range(N):
        delta = new_values[:, :, i] - k_cumdecay[:, :, i] @ S  # [B, H, C, V]
        outs.append(q_decayed[:, :, i] @ S + intra_attn[:, :, i] @ delta)
        kdk = None if pairs is None else k_dot_khat[:, :, i]
        n_sq, readout = _chunk_identity(c[:, :, i], D[:, :, i], k_c[:, :, i], KK[:, :, i], S, delta, khat, kdk)
        norm_sq.append(n_sq)
        readouts.append(readout)
        for s, t in enumerate(positions):
            if t // chunk_size == i:
                r = t % chunk_size
                snaps[s] = _state_at(S, c[:, :, i, r], D[:, :, i, r], k_c[:, :, i], delta)
        if return_chunk_states:
            starts.append(S)
            deltas.append(delta)
        S = S * chunk_decay[:, :, i] + k_to_end[:, :, i].transpose(-1, -2) @ delta

    out = _assemble(torch.stack(norm_sq, 2), None if pairs is None else torch.stack(readouts, 2), T, pairs, v_target)
    out["o"] = torch.stack(outs, 2).reshape(B, Hv, -1, V)[:, :, :T].transpose(1, 2)  # [B, T, Hv, V]
    out["final_state"] = S
    if positions:
        _with_spectrum(out, torch.stack([snaps[s] for s in range(len(positions))], 1), snapshot_spectrum)
    if return_chunk_states:
        out["chunk_states"] = torch.stack(starts, 2)
        out["v_new"] = torch.stack(deltas, 2).reshape(B, Hv, -1, V)[:, :, :T].transpose(1, 2)
    return StateStats(**out)


def state_norms_from_chunk_states(
    k: torch.Tensor,
    g: torch.Tensor,
    chunk_states: torch.Tensor,
    v_new: torch.Tensor,
    v: torch.Tensor | None = None,
    recall_pairs: torch.Tensor | None = None,
    snapshot_positions: Sequence[int] | None = None,
    chunk_size: int = 64,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
    snapshot_spectrum: bool = True,
    kernel: str = "auto",
) -> StateStats:
    """Per-token state norms (and recall, snapshots) from chunk-start states, with no loop over chunks.

    Args:
        k: [B, T, Hk, K] raw keys; g: [B, T, Hv] log decay.
        chunk_states: [B, Hv, N, K, V] state at the start of each chunk (chunk_states[:, :, 0] is the initial
            state). fla's `chunk_gated_delta_rule_fwd_h` returns h as [B, N, Hv, K, V]: pass h.transpose(1, 2).
        v_new: [B, T, Hv, V] (or padded to N * chunk_size) corrected values, beta included, not decayed
            (fla's v_new = u - w @ h).
        v: [B, T, Hv, V] values, needed only for recall targets; recall_pairs: [P, 2] as in `naive_state_stats`.
        chunk_size: the chunk size that produced chunk_states (fla: 64).
        kernel: "auto" computes norms alone (no recall, no snapshots, fp32) with the fused Triton kernel
            (triton_norms.py) where it runs, else with the batched PyTorch ops below; "torch" always the latter.
    Returns:
        StateStats with state_norm [B, T, Hv] and, when asked, recall and snapshot fields (o, final_state None).
    Works on [B, Hk, G, N, ...] (G = Hv / Hk value heads per key head): the keys and their Gram matrices stay
    per key head and broadcast over the G value heads, never repeated. Each input is cast and laid out once.
    Memory: O(B Hv N C^2) for the decay matrices plus O(B Hv P T V) for recall readouts.
    """
    B, T, Hv = g.shape
    Hk = k.shape[2]
    if Hv % Hk:
        raise ValueError(f"Hv={Hv} is not a multiple of Hk={Hk}")
    G = Hv // Hk
    kn = l2norm(k.to(dtype)) if use_qk_l2norm else k  # [B, T, Hk, K]
    if kernel not in ("auto", "torch"):
        raise ValueError(f"kernel must be 'auto' or 'torch', not {kernel!r}")
    if (kernel == "auto" and recall_pairs is None and not snapshot_positions and dtype == torch.float32
            and triton_norms.available(g.device) and triton_norms.supports(kn, v_new, chunk_size)):
        h = chunk_states.transpose(1, 2)  # back to fla's [B, N, Hv, K, V] (a view: the kernel reads any strides)
        return StateStats(state_norm=triton_norms.chunk_state_norms(kn, g, h, v_new[:, :T], chunk_size))
    k_c = _to_chunks(kn, chunk_size, dtype)[:, :, None]  # [B, Hk, 1, N, C, K]
    N = k_c.shape[3]
    if chunk_states.shape[2] != N:
        raise ValueError(f"chunk_states has {chunk_states.shape[2]} chunks, T={T} / chunk_size gives {N}")

    def grouped(x):  # [B, Hv, ...] -> [B, Hk, G, ...] (value head h belongs to key head h // G)
        return x.reshape(B, Hk, G, *x.shape[2:])

    c = grouped(_to_chunks(g, chunk_size, dtype).cumsum(-1))  # [B, Hk, G, N, C]
    h = grouped(chunk_states.to(dtype, memory_format=torch.contiguous_format))  # [B, Hk, G, N, K, V]
    delta = grouped(_to_chunks(v_new[:, : N * chunk_size], chunk_size, dtype))  # [B, Hk, G, N, C, V]
    D = _decay_matrix(c)  # [B, Hk, G, N, C, C]
    KK = k_c @ k_c.transpose(-1, -2)  # [B, Hk, 1, N, C, C]
    pairs = v_target = khat = k_dot_khat = None
    if recall_pairs is not None:
        if v is None:
            raise ValueError("recall_pairs needs v (the recall targets)")
        pairs = check_recall_pairs(recall_pairs, T)
        khat, v_target = _recall_inputs(kn, v, pairs, dtype)  # khat [B, Hk, P, K] per key head
        khat = khat[:, :, None, None]  # [B, Hk, 1, 1, P, K]
        k_dot_khat = k_c @ khat.transpose(-1, -2)  # [B, Hk, 1, N, C, P]
    norm_sq, readout = _chunk_identity(c, D, k_c, KK, h, delta, khat, k_dot_khat)
    norm_sq = norm_sq.reshape(B, Hv, N, chunk_size)
    readout = None if readout is None else readout.reshape(B, Hv, *readout.shape[3:])
    out = _assemble(norm_sq, readout, T, pairs, v_target)
    positions = check_positions(snapshot_positions, T)
    if positions:
        n = torch.tensor([t // chunk_size for t in positions])
        r = torch.tensor([t % chunk_size for t in positions])
        states = _state_at(h[:, :, :, n], c[:, :, :, n, r], D[:, :, :, n, r], k_c[:, :, :, n], delta[:, :, :, n])
        _with_spectrum(out, states.reshape(B, Hv, *states.shape[3:]).transpose(1, 2), snapshot_spectrum)
    return StateStats(**out)
