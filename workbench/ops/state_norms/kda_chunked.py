"""Per-token Kimi Delta Attention (KDA) state norms at chunk speed, without materialising per-token states.

KDA is the gated delta rule with a per-key-channel log decay g_t in R^K (see `kda_naive.py` for the recurrence
and the transformers / fla code it follows). Inside a chunk of C tokens with start state S0 [K, V]:
    c_r   = sum_{s <= r in the chunk} g_s  in R^K        chunk-local cumulative log decay (non-increasing, <= 0)
    E_rj  = exp(c_r - c_j) in R^K for j <= r, else 0     per-channel decay from token j to token r (entries <= 1)
    Kt_r  = the C x K matrix with rows E_rj o k_j        keys as seen from token r ("K-tilde"; o = elementwise)
Unrolling S_r = diag(exp(g_r)) S_{r-1} + k_r delta_r^T from S0 gives exactly
    S_r = diag(e^{c_r}) S0 + Kt_r^T Delta                (Delta: rows delta_j, beta included: fla's v_new)
    ||S_r||_F^2 = sum_k e^{2 c_rk} ||S0[k, :]||^2                   (carried state)
                + 2 sum_j Kt_r[j] . (e^{c_r} o P_j),  P_j = S0 delta_j in R^K     (cross term)
                + 1^T ((Kt_r Kt_r^T) o (Delta Delta^T)) 1                        (written this chunk)
With a scalar decay E_rj = D_rj 1, Kt_r Kt_r^T = D_r D_r^T o (K K^T) and this is the Gated DeltaNet identity of
`chunked.py`. Every exponential above has a non-positive argument (c_r - c_j <= 0 for j <= r, c_r <= 0), so none
overflows: nothing is written as e^{c_r} e^{-c_j}. The cost is a C x C x K decay tensor and a C x C x C Gram tensor
per chunk and head (C^3 K multiply-adds). Unlike the scalar case, the decay does not factor out of the key Gram
(for a scalar decay Kt_r Kt_r^T = (D_r D_r^T) o K K^T: one C x C Gram per chunk serves every r), hence C^3 K.
The alternative `norms="scan"` runs the recurrence itself from every chunk-start state at once (C sequential steps,
O(K V) per token and head, one K x V state per chunk held, like fla's h): fewer flops whenever C^2 > V.
The corrected values come from the same chunk algorithm as transformers' `chunk_kimi_delta_attention` and fla's
`naive_chunk_kda`: within a chunk, (I + A) Delta = beta o V - (beta o K o e^{c}) S0 with the strictly lower
triangular A_rj = beta_r k_r . (E_rj o k_j), solved by forward substitution; the next chunk starts from
    S' = diag(e^{c_last}) S0 + sum_j (e^{c_last - c_j} o k_j) delta_j^T.
Internal layout: [B, Hv, N, C, ...] (N chunks of C tokens), as in `chunked.py`.
"""

from __future__ import annotations

import math

import torch

from .chunked import _to_chunks
from .kda_naive import check_kda_shapes
from .naive import StateStats, kernel_qk, l2norm


def _kda_decay_tensor(c: torch.Tensor) -> torch.Tensor:
    """c: [..., C, K] cumulative log decay -> E: [..., C, C, K], E[r, j] = exp(c_r - c_j) for j <= r, else 0."""
    diff = c[..., :, None, :] - c[..., None, :, :]  # [..., C(r), C(j), K]
    upper = torch.ones(c.shape[-2], c.shape[-2], dtype=torch.bool, device=c.device).triu(1)[..., None]
    return diff.masked_fill(upper, -math.inf).exp()  # -inf before exp: no overflow above the diagonal


def _kda_chunk_norms(c: torch.Tensor, E: torch.Tensor, K: torch.Tensor, h: torch.Tensor, delta: torch.Tensor):
    """The per-channel chunk identity for any leading dims [...] (one chunk, or all N chunks at once).

    c: [..., C, K] chunk-local cumulative log decay; E: [..., C, C, K] from `_kda_decay_tensor`; K: [..., C, K]
    keys; h: [..., K, V] chunk start state; delta: [..., C, V] corrected values. Returns ||S_r||_F^2: [..., C]
    (clamped >= 0).
    """
    ec = c.exp()  # [..., C, K]
    row_sq = h.square().sum(-1)  # [..., K]  ||S0[k, :]||^2
    carried = ec.square() @ row_sq[..., None]  # [..., C, 1]
    Kt = E * K[..., None, :, :]  # [..., C(r), C(j), K]
    P = delta @ h.transpose(-1, -2)  # [..., C, K]  P_j = S0 delta_j
    cross = ((Kt * P[..., None, :, :]).sum(-2) * ec).sum(-1)  # [..., C]
    gram = Kt @ Kt.transpose(-1, -2)  # [..., C(r), C, C]
    written = (gram * (delta @ delta.transpose(-1, -2))[..., None, :, :]).sum((-1, -2))  # [..., C]
    return (carried.squeeze(-1) + 2 * cross + written).clamp_min(0)


def _kda_chunk_scan_norms(g: torch.Tensor, K: torch.Tensor, h: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The same ||S_r||_F^2 by the recurrence itself, run from every chunk start at once (C sequential steps).

    g: [..., C, K] log decay; K: [..., C, K] keys; h: [..., K, V] chunk start states; delta: [..., C, V]
    -> [..., C]. S_r = diag(e^{g_r}) S_{r-1} + k_r delta_r^T from S_{-1} = h: O(K V) per token and head (the
    identity costs O(C^2 K)), holding one K x V state per chunk (fla's h); the only exponentials are e^{g_r} <= 1.
    """
    S, norm_sq = h, []
    for r in range(g.shape[-2]):
        S = S * g[..., r, :, None].exp() + K[..., r, :, None] * delta[..., r, None, :]
        norm_sq.append(torch.linalg.vector_norm(S, dim=(-2, -1)).square())
    return torch.stack(norm_sq, -1)


NORM_METHODS = ("identity", "scan")


def _check_norm_method(norms):
    if norms is not None and norms not in NORM_METHODS:
        raise ValueError(f"norms must be one of {NORM_METHODS} or None, got {norms!r}")


def chunked_kda_state_stats(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
    return_chunk_states: bool = False,
    norms: str | None = "identity",
) -> StateStats:
    """Chunked Kimi Delta Attention with exact per-token state norms; same contract as `naive_kda_state_stats`.

    Args:
        q, k: [B, T, Hk, K] raw queries/keys (L2-normalised here when use_qk_l2norm; q scaled by K**-0.5).
        v: [B, T, Hv, V]; Hv a multiple of Hk (key head h serves value heads h*G .. h*G+G-1).
        g: [B, T, Hv, K] per-channel log decay (<= 0); beta: [B, T, Hv] write strength in (0, 1).
        initial_state: [B, Hv, K, V] or None (zeros).
        chunk_size: C; T need not be a multiple (padding tokens get g = 0, beta = 0: the state is unchanged).
        dtype: compute dtype (fp32 matches the fp64 scan to ~1e-5 relative; fp64 to round-off).
        return_chunk_states: also return chunk_states [B, Hv, N, K, V] (start state of each chunk) and v_new
            [B, T, Hv, V], the inputs of `kda_state_norms_from_chunk_states` (fla's chunk_kda h and v_new).
        norms: how the per-token norms are computed, both exact: "identity" (the chunk identity, inside the chunk
            loop; O(C^2 K) per token and head) or "scan" (`_kda_chunk_scan_norms` over all chunks after the loop;
            O(K V) per token, C sequential steps, one K x V state per chunk held); None skips them
            (state_norm None), for callers that need only o and v_new.
    Returns:
        StateStats with state_norm [B, T, Hv], o [B, T, Hv, V], final_state [B, Hv, K, V] (and chunk_states, v_new).
    The loop over T / C chunks carries the state; each chunk costs O(C^2 K) for the decay tensor and
    O(C^2 (K + V) + C K V) for the rule itself, per head, plus the norms.
    """
    check_kda_shapes(q, k, v, g, beta)
    _check_norm_method(norms)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    B, T, Hv, V = v.shape
    qn, kn = kernel_qk(q, k, Hv, use_qk_l2norm, dtype)  # [B, T, Hv, K]
    q_c, k_c, v_c, g_c = (_to_chunks(x, chunk_size, dtype) for x in (qn, kn, v, g))  # [B, Hv, N, C, *]
    beta_c = _to_chunks(beta, chunk_size, dtype)  # [B, Hv, N, C]
    c = g_c.cumsum(-2)  # [B, Hv, N, C, K]
    N = c.shape[2]
    S = (torch.zeros(B, Hv, k_c.shape[-1], V, dtype=dtype, device=v.device) if initial_state is None
         else initial_state.to(dtype))
    strictly_upper = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=v.device).triu(1)
    outs, norm_sq, starts, deltas = [], [], [], []
    for i in range(N):
        c_i, k_i, q_i, b_i = c[:, :, i], k_c[:, :, i], q_c[:, :, i], beta_c[:, :, i, :, None]  # [B, Hv, C, *]
        E = _kda_decay_tensor(c_i)  # [B, Hv, C, C, K]
        Kt = E * k_i[..., None, :, :]  # [B, Hv, C(r), C(j), K]
        ut_system = (Kt * k_i[..., :, None, :]).sum(-1) * b_i  # [B, Hv, C, C]; A_rj (diagonal ignored below)
        rhs = torch.cat([v_c[:, :, i] * b_i, k_i * b_i * c_i.exp()], -1)  # [B, Hv, C, V + K]
        sol = torch.linalg.solve_triangular(ut_system, rhs, upper=False, unitriangular=True)
        delta = sol[..., :V] - sol[..., V:] @ S  # [B, Hv, C, V]
        intra_attn = (Kt * q_i[..., :, None, :]).sum(-1).masked_fill(strictly_upper, 0)  # q_r . (E_rj o k_j)
        outs.append((q_i * c_i.exp()) @ S + intra_attn @ delta)
        if norms == "identity":
            norm_sq.append(_kda_chunk_norms(c_i, E, k_i, S, delta))
        if return_chunk_states or norms == "scan":
            starts.append(S)
            deltas.append(delta)
        c_last = c_i[..., -1:, :]  # [B, Hv, 1, K]
        S = S * c_last.exp().transpose(-1, -2) + (k_i * (c_last - c_i).exp()).transpose(-1, -2) @ delta

    if norms == "scan":
        norm_sq = _kda_chunk_scan_norms(g_c, k_c, torch.stack(starts, 2), torch.stack(deltas, 2))  # [B, Hv, N, C]
    elif norms == "identity":
        norm_sq = torch.stack(norm_sq, 2)
    out = dict(
        state_norm=None if norms is None else norm_sq.sqrt().reshape(B, Hv, -1)[..., :T].transpose(1, 2),
        o=torch.stack(outs, 2).reshape(B, Hv, -1, V)[:, :, :T].transpose(1, 2),  # [B, T, Hv, V]
        final_state=S,
    )
    if return_chunk_states:
        out["chunk_states"] = torch.stack(starts, 2)
        out["v_new"] = torch.stack(deltas, 2).reshape(B, Hv, -1, V)[:, :, :T].transpose(1, 2)
    return StateStats(**out)


def kda_state_norms_from_chunk_states(
    k: torch.Tensor,
    g: torch.Tensor,
    chunk_states: torch.Tensor,
    v_new: torch.Tensor,
    chunk_size: int = 64,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
    norms: str = "scan",
) -> StateStats:
    """Per-token KDA state norms from chunk-start states, all chunks at once (no loop over chunks).

    Args:
        k: [B, T, Hk, K] raw keys; g: [B, T, Hv, K] per-channel log decay (<= 0).
        chunk_states: [B, Hv, N, K, V] state at the start of each chunk (chunk_states[:, :, 0] is the initial
            state); fla's chunk_kda forward keeps h as [B, N, Hv, K, V]: pass h.transpose(1, 2).
        v_new: [B, T, Hv, V] (or padded to N * chunk_size) corrected values, beta included, not decayed.
        chunk_size: the chunk size that produced chunk_states (fla: 64).
        norms: "scan" (C steps over all chunks at once, memory O(B Hv N K V), like chunk_states) or "identity"
            (no sequential step, memory O(B Hv N C^2 (C + K)) for the decay and Gram tensors: short inputs only).
    Returns:
        StateStats with state_norm [B, T, Hv] (o, final_state None).
    """
    _check_norm_method(norms)
    if norms is None:
        raise ValueError("kda_state_norms_from_chunk_states computes norms: norms must not be None")
    if g.dim() != 4:
        raise ValueError(f"per-channel g must be [B, T, Hv, K], got {tuple(g.shape)}")
    B, T, Hv, K = g.shape
    Hk = k.shape[2] if k.dim() == 4 else 0
    if Hk == 0 or k.shape[:2] != (B, T) or k.shape[-1] != K or Hv % Hk:
        raise ValueError(f"k must be [B={B}, T={T}, Hk, K={K}] with Hv={Hv} a multiple of Hk, got {tuple(k.shape)}")
    kn = (l2norm(k.to(dtype)) if use_qk_l2norm else k.to(dtype)).repeat_interleave(Hv // Hk, dim=2)
    k_c = _to_chunks(kn, chunk_size, dtype)  # [B, Hv, N, C, K]
    N = k_c.shape[2]
    if chunk_states.shape[:3] != (B, Hv, N):
        raise ValueError(f"chunk_states must be [B={B}, Hv={Hv}, N={N}, K, V], got {tuple(chunk_states.shape)}")
    g_c = _to_chunks(g, chunk_size, dtype)  # [B, Hv, N, C, K]
    delta = _to_chunks(v_new[:, : N * chunk_size], chunk_size, dtype)  # [B, Hv, N, C, V]
    h = chunk_states.to(dtype)
    if norms == "scan":
        norm_sq = _kda_chunk_scan_norms(g_c, k_c, h, delta)  # [B, Hv, N, C]
    else:
        c = g_c.cumsum(-2)
        norm_sq = _kda_chunk_norms(c, _kda_decay_tensor(c), k_c, h, delta)
    return StateStats(state_norm=norm_sq.sqrt().reshape(B, Hv, -1)[..., :T].transpose(1, 2))
