"""Token-by-token fp64 reference for Gated DeltaNet recurrent-state statistics.

Recurrence per value head (state S in R^{K x V}; conventions of transformers' `torch_chunk_gated_delta_rule`):
    S_t = a_t S_{t-1} + k_t delta_t^T,   delta_t = beta_t (v_t - a_t S_{t-1}^T k_t),   o_t = S_t^T q_t
with a_t = exp(g_t) the per-token decay factor, k_t/q_t the kernel-normalised key/query (`kernel_qk`).
Every fast version (`chunked.py`) must match this scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch

from ..decay import decay_factor, half_life


@dataclass(frozen=True)
class StateStats:
    """Per-token statistics of the recurrent state. Fields a call did not ask for are None.

    state_norm:          [B, T, Hv]      ||S_t||_F after token t's update (units of v, since ||k|| = 1).
    o:                   [B, T, Hv, V]   kernel output o_t = S_t^T q_t.
    final_state:         [B, Hv, K, V]   S_{T-1}.
    recall_rel_err:      [B, P, T, Hv]   ||r - v_p|| / ||v_p||, r = S_t^T khat_p; NaN for t < key position.
    recall_cos:          [B, P, T, Hv]   cosine(r, v_p), 0 where r = 0; NaN for t < key position.
    recall_readout_norm: [B, P, T, Hv]   ||r|| (units of v); NaN for t < key position.
    recall_retention_cos:   [B, P, T, Hv]  cosine(r_t, r_key): the readout against the one right after the key was
                            written (what the state held for the key then, not the raw v: one delta-rule write gives
                            r_key = (1 - beta) old + beta v, so rel_err is ~1 - beta even with perfect memory).
    recall_retention_ratio: [B, P, T, Hv]  ||r_t|| / ||r_key|| (1 = kept at full strength, 0 = forgotten).
    snapshot_states:     [B, n_snap, Hv, K, V]  S_t at the requested positions.
    snapshot_eff_rank:   [B, n_snap, Hv] exp(entropy of s_i / sum s), 0 for an all-zero state.
    snapshot_top_sv:     [B, n_snap, Hv] largest singular value.
    chunk_states:        [B, Hv, N, K, V] state at the start of each chunk (chunked path, on request).
    v_new:               [B, T, Hv, V]   corrected values delta_t (beta included) (chunked path, on request).
    """

    state_norm: torch.Tensor
    o: torch.Tensor | None = None
    final_state: torch.Tensor | None = None
    recall_rel_err: torch.Tensor | None = None
    recall_cos: torch.Tensor | None = None
    recall_readout_norm: torch.Tensor | None = None
    recall_retention_cos: torch.Tensor | None = None
    recall_retention_ratio: torch.Tensor | None = None
    snapshot_states: torch.Tensor | None = None
    snapshot_eff_rank: torch.Tensor | None = None
    snapshot_top_sv: torch.Tensor | None = None
    chunk_states: torch.Tensor | None = None
    v_new: torch.Tensor | None = None


class GateStats(NamedTuple):
    """decay: exp(g), state multiplier per token (1 = keep all). half_life: ln2 / -g in tokens (inf where
    g == 0). beta: write strength in (0, 1). All shaped like the inputs, e.g. [B, T, Hv]."""

    decay: torch.Tensor
    half_life: torch.Tensor
    beta: torch.Tensor


def gate_stats(g: torch.Tensor, beta: torch.Tensor) -> GateStats:
    """Readable gate statistics. g: log decay (<= 0), any shape; beta: same shape.

    half_life is the number of tokens after which an untouched memory has decayed to half: exp(g * h) = 1/2.
    """
    return GateStats(decay=decay_factor(g), half_life=half_life(g), beta=beta)


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(sum x^2 + eps) over the last dim, exactly as transformers/fla normalise q and k."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


def kernel_qk(
    q: torch.Tensor, k: torch.Tensor, num_v_heads: int, use_qk_l2norm: bool = True, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k: [B, T, Hk, K] -> kernel coordinates [B, T, Hv, K] in `dtype`.

    Key head h serves value heads h*G .. h*G+G-1 (G = Hv / Hk, repeat_interleave). q and k are L2-normalised
    (eps 1e-6) when use_qk_l2norm; q is then scaled by K**-0.5, k is not.
    """
    q = kernel_k(q, num_v_heads, use_qk_l2norm, dtype)
    return q * q.shape[-1] ** -0.5, kernel_k(k, num_v_heads, use_qk_l2norm, dtype)


def kernel_k(k: torch.Tensor, num_v_heads: int, use_qk_l2norm: bool = True, dtype=torch.float64) -> torch.Tensor:
    """k: [B, T, Hk, K] -> [B, T, Hv, K] in `dtype`, L2-normalised when use_qk_l2norm (the key half of
    `kernel_qk`, for callers that need no queries)."""
    num_k_heads = k.shape[2]
    if num_v_heads % num_k_heads:
        raise ValueError(f"Hv={num_v_heads} is not a multiple of Hk={num_k_heads}")
    k = k.to(dtype).repeat_interleave(num_v_heads // num_k_heads, dim=2)
    return l2norm(k) if use_qk_l2norm else k


def check_recall_pairs(recall_pairs: torch.Tensor, seq_len: int) -> torch.Tensor:
    """recall_pairs: [P, 2] (key_position, value_position) token indices -> LongTensor, range-checked."""
    pairs = torch.as_tensor(recall_pairs, dtype=torch.long).reshape(-1, 2)
    if pairs.numel() and (pairs.min() < 0 or pairs.max() >= seq_len):
        raise ValueError(f"recall positions must lie in [0, {seq_len}), got {pairs.tolist()}")
    return pairs


def check_positions(positions: Sequence[int] | None, seq_len: int) -> list[int]:
    """Snapshot token indices -> list of ints, each in [0, seq_len)."""
    positions = [int(t) for t in (positions if positions is not None else [])]
    if any(not 0 <= t < seq_len for t in positions):
        raise ValueError(f"snapshot positions must lie in [0, {seq_len}), got {positions}")
    return positions


def recall_metrics(readout: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """readout, target: [..., V] -> (rel_err, cos, readout_norm), each [...].

    rel_err = ||r - v|| / ||v||; cos = r.v / (||r|| ||v||), defined as 0 where r or v is exactly 0.
    """
    r_norm = readout.norm(dim=-1)
    v_norm = target.norm(dim=-1)
    rel_err = (readout - target).norm(dim=-1) / v_norm
    denom = r_norm * v_norm
    cos = torch.where(denom > 0, (readout * target).sum(-1) / denom.clamp_min(torch.finfo(denom.dtype).tiny), 0.0)
    return rel_err, cos, r_norm


def retention_metrics(readout: torch.Tensor, key_positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Retention of planted keys relative to what was written. readout: [..., P, T, V] r_t = S_t^T khat_p for every
    token t; key_positions: [P] -> (cos, ratio), each [..., P, T]: cosine(r_t, r_key) (0 where either is 0) and
    ||r_t|| / ||r_key|| (NaN where r_key = 0), with r_key the readout right after the key's own write; NaN for
    t < key position."""
    P, T = readout.shape[-3], readout.shape[-2]
    index = key_positions.to(readout.device).reshape(P, 1, 1).expand(*readout.shape[:-2], 1, readout.shape[-1])
    at_key = readout.gather(-2, index)  # [..., P, 1, V]
    _, cos, r_norm = recall_metrics(readout, at_key)
    key_norm = at_key.norm(dim=-1)  # [..., P, 1]
    ratio = torch.where(key_norm > 0, r_norm / key_norm.clamp_min(torch.finfo(key_norm.dtype).tiny), math.nan)
    early = torch.arange(T, device=readout.device)[None, :] < key_positions.to(readout.device)[:, None]  # [P, T]
    return cos.masked_fill(early, math.nan), ratio.masked_fill(early, math.nan)


def state_spectrum(states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """states: [..., K, V] -> (effective rank, top singular value), each [...].

    Effective rank = exp(-sum p_i log p_i) with p_i = s_i / sum_j s_j (Roy & Vetterli); 0 for a zero state.
    """
    s = torch.linalg.svdvals(states)  # [..., min(K, V)], descending
    total = s.sum(-1, keepdim=True)
    p = s / total.clamp_min(torch.finfo(s.dtype).tiny)
    entropy = -torch.where(p > 0, p * p.clamp_min(torch.finfo(s.dtype).tiny).log(), 0.0).sum(-1)
    eff_rank = torch.where(total.squeeze(-1) > 0, entropy.exp(), 0.0)
    return eff_rank, s[..., 0]


def naive_state_stats(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    recall_pairs: torch.Tensor | None = None,
    snapshot_positions: Sequence[int] | None = None,
    use_qk_l2norm: bool = True,
) -> StateStats:
    """fp64 token-by-token scan of the gated delta rule, with per-token state statistics.

    Args:
        q, k: [B, T, Hk, K] raw queries/keys (normalised here, see `kernel_qk`).
        v: [B, T, Hv, V] values; Hv a multiple of Hk.
        g: [B, T, Hv] log decay (<= 0); beta: [B, T, Hv] write strength in (0, 1).
        initial_state: [B, Hv, K, V] or None (zeros).
        recall_pairs: [P, 2] LongTensor of (key_position, value_position): for t >= key_position the state is
            read with the kernel-normalised key at key_position (per value head, through its key head) and the
            readout compared with v at value_position.
        snapshot_positions: token indices at which to keep the full state and its spectrum.
    Returns:
        StateStats in fp64 with state_norm, o, final_state, and the recall/snapshot fields when asked.
    """
    B, T, Hv, V = v.shape
    f64 = torch.float64
    qn, kn = kernel_qk(q, k, Hv, use_qk_l2norm, f64)  # [B, T, Hv, K]
    v, g, beta = v.to(f64), g.to(f64), beta.to(f64)
    K = kn.shape[-1]
    S = torch.zeros(B, Hv, K, V, dtype=f64, device=v.device) if initial_state is None else initial_state.to(f64).clone()

    pairs = None if recall_pairs is None else check_recall_pairs(recall_pairs, T)
    if pairs is not None:
        khat = kn[:, pairs[:, 0]]  # [B, P, Hv, K]
        v_target = v[:, pairs[:, 1]]  # [B, P, Hv, V]
        recall, readouts = [], []
    positions = check_positions(snapshot_positions, T)
    snaps = {}

    outs, norms = [], []
    for t in range(T):
        S = S * g[:, t].exp()[..., None, None]
        k_t = kn[:, t]  # [B, Hv, K]
        delta = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhkv,bhk->bhv", S, k_t))  # [B, Hv, V]
        S = S + k_t[..., :, None] * delta[..., None, :]
        outs.append(torch.einsum("bhkv,bhk->bhv", S, qn[:, t]))
        norms.append(S.flatten(-2).norm(dim=-1))
        if pairs is not None:
            readouts.append(torch.einsum("bhkv,bphk->bphv", S, khat))  # [B, P, Hv, V]
            recall.append(recall_metrics(readouts[-1], v_target))
        if t in positions:
            snaps[t] = S.clone()

    stats = dict(state_norm=torch.stack(norms, 1), o=torch.stack(outs, 1), final_state=S)
    if pairs is not None:
        early = torch.arange(T, device=v.device)[None, :] < pairs[:, :1].to(v.device)  # [P, T], on the stats' device
        for name, i in (("recall_rel_err", 0), ("recall_cos", 1), ("recall_readout_norm", 2)):
            x = torch.stack([m[i] for m in recall], 2)  # [B, P, T, Hv]
            stats[name] = x.masked_fill(early[None, :, :, None], math.nan)
        kept = retention_metrics(torch.stack(readouts, 3).transpose(1, 2), pairs[:, 0])  # [B, Hv, P, T] each
        stats["recall_retention_cos"], stats["recall_retention_ratio"] = (x.permute(0, 2, 3, 1) for x in kept)
    if positions:
        states = torch.stack([snaps[t] for t in positions], 1)  # [B, n_snap, Hv, K, V]
        stats["snapshot_states"] = states
        stats["snapshot_eff_rank"], stats["snapshot_top_sv"] = state_spectrum(states)
    return StateStats(**stats)
