"""Token-by-token fp64 reference for Kimi Delta Attention (KDA) recurrent-state statistics.

KDA is the gated delta rule with a per-key-channel decay. Per value head (state S in R^{K x V}), with
g_t in R^K the log decay (every entry <= 0) and a_t = exp(g_t) the per-channel decay factor:
    S_t = diag(a_t) S_{t-1} + k_t delta_t^T,   delta_t = beta_t (v_t - (diag(a_t) S_{t-1})^T k_t),   o_t = S_t^T q_t
The gate multiplies the state's key rows BEFORE the delta is read off it (as in the scalar rule), and
q/k are L2-normalised (eps 1e-6) with q then scaled by K**-0.5, exactly as in
  - transformers 5.24 `models/kimi_linear/modeling_kimi_linear.py`: `recurrent_kimi_delta_attention` and
    `chunk_kimi_delta_attention` (called with use_qk_l2norm_in_kernel=True; g [B, T, H, K] from
    `KimiLinearForgetGate`, g = -exp(A_log) * softplus(f + dt_bias); beta = sigmoid(b_proj(x)));
  - fla `fla/ops/kda/naive.py`: `naive_recurrent_kda` (g [B, T, HV, K] per value head; q, k [B, T, H, K] with
    HV a multiple of H, key head h serving value heads h*G .. h*G+G-1; scale K**-0.5; no L2 norm inside).
With every channel of g_t equal to a scalar g_t, this is `naive_state_stats` (the Gated DeltaNet scan).
Every fast version (`kda_chunked.py`) must match this scan.
"""

from __future__ import annotations

import torch

from .naive import StateStats, kernel_qk


def check_kda_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor) -> None:
    """Raise ValueError unless q, k [B, T, Hk, K]; v [B, T, Hv, V]; g [B, T, Hv, K]; beta [B, T, Hv]."""
    if q.dim() != 4 or q.shape != k.shape:
        raise ValueError(f"q and k must both be [B, T, Hk, K], got {tuple(q.shape)} and {tuple(k.shape)}")
    B, T, Hk, K = k.shape
    if v.dim() != 4 or v.shape[:2] != (B, T) or v.shape[2] % Hk:
        raise ValueError(f"v must be [B={B}, T={T}, Hv, V] with Hv a multiple of Hk={Hk}, got {tuple(v.shape)}")
    Hv = v.shape[2]
    if tuple(g.shape) != (B, T, Hv, K):
        raise ValueError(f"per-channel g must be [B, T, Hv, K] = {(B, T, Hv, K)}, got {tuple(g.shape)}")
    if tuple(beta.shape) != (B, T, Hv):
        raise ValueError(f"beta must be [B, T, Hv] = {(B, T, Hv)}, got {tuple(beta.shape)}")


def naive_kda_state_stats(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    use_qk_l2norm: bool = True,
) -> StateStats:
    """fp64 token-by-token scan of Kimi Delta Attention, with per-token state norms.

    Args:
        q, k: [B, T, Hk, K] raw queries/keys (normalised here, see `kernel_qk`).
        v: [B, T, Hv, V] values; Hv a multiple of Hk.
        g: [B, T, Hv, K] per-channel log decay (<= 0; decay factor exp(g)); beta: [B, T, Hv] write strength in (0, 1).
        initial_state: [B, Hv, K, V] or None (zeros).
    Returns:
        StateStats in fp64 with state_norm [B, T, Hv] (||S_t||_F after token t's update, units of v),
        o [B, T, Hv, V], final_state [B, Hv, K, V] and v_new [B, T, Hv, V] (the corrected values delta_t,
        beta included: fla's v_new).
    """
    check_kda_shapes(q, k, v, g, beta)
    B, T, Hv, V = v.shape
    f64 = torch.float64
    qn, kn = kernel_qk(q, k, Hv, use_qk_l2norm, f64)  # [B, T, Hv, K]
    v, decay, beta = v.to(f64), g.to(f64).exp(), beta.to(f64)  # decay: [B, T, Hv, K]
    K = kn.shape[-1]
    S = torch.zeros(B, Hv, K, V, dtype=f64, device=v.device) if initial_state is None else initial_state.to(f64).clone()
    outs, norms, deltas = [], [], []
    for t in range(T):
        S = S * decay[:, t, :, :, None]  # each key row k of S decays by exp(g_t[k])
        k_t = kn[:, t]  # [B, Hv, K]
        delta = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhkv,bhk->bhv", S, k_t))  # [B, Hv, V]
        S = S + k_t[..., :, None] * delta[..., None, :]
        outs.append(torch.einsum("bhkv,bhk->bhv", S, qn[:, t]))
        norms.append(S.flatten(-2).norm(dim=-1))
        deltas.append(delta)
    return StateStats(state_norm=torch.stack(norms, 1), o=torch.stack(outs, 1), final_state=S,
                      v_new=torch.stack(deltas, 1))
