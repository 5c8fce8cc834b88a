"""DeltaNet span contributions without a T x T matrix: gather the spans' keys and corrected values, weight them.

The decomposition (see `naive.py`):
    o_t = sum_{j <= t} w_tj delta_j + (e^{c_t} o q_t)^T S0,   w_tj = q_t . (e^{c_t - c_j} o k_j).
A span's part for query row t needs only q_t, c_t, and the keys k_j, corrected values delta_j and cumulative decays
c_j of the span's tokens: with L the number of tokens in the union of the spans and Q query rows, the work is a
[Q, L] weight matrix per head (O(Q L K) for the weights, O(Q L V) for the parts); the rest is o_t minus the union's
part, with o_t the kernel's own output. Nothing of size T x T, or Q x T, is formed, except when o must be rebuilt
(see `span_contributions`).

The corrected values delta (fla's and transformers' `v_new`) come either from the caller (e.g. captured from fla's
chunk kernel) or from the chunked ops here (`chunked_state_stats`, `chunked_kda_state_stats`).

Precision: c_t - c_j is a difference of two cumulative sums that grow without bound (about -20 per token for a fast
decaying head: -6.5e5 at 32K tokens), which fp32 cannot difference to better than ~0.04. So c is accumulated in
fp64 in two levels (chunk totals, then the chunk-local sums of the few chunks holding gathered positions), without
an fp64 copy of g; c_t - c_j is formed in fp64 and is <= 0 for j <= t, so every exponential is <= 1.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..attention_stats.naive import Span
from ..state_norms.chunked import chunked_state_stats
from ..state_norms.kda_chunked import chunked_kda_state_stats
from ..state_norms.naive import kernel_qk
from .naive import SpanContributions, channel_log_decay, check_span_request, span_shares


def cumulative_log_decay_at(g: torch.Tensor, positions: torch.Tensor, chunk_size: int = 64) -> torch.Tensor:
    """c_p = sum_{s <= p} g_s at the given token positions, in fp64, accumulated in two levels (see module doc).

    g: [B, T, H, *rest] log decay (rest = () or (K,)); positions: [P] int64 -> [B, P, H, *rest] fp64.
    Only the chunk totals ([B, N, H, *rest]) and the chunks holding the positions are summed in fp64: an fp64 copy
    of g only when positions fall in every chunk.
    """
    B, T = g.shape[:2]
    pad = (-T) % chunk_size
    g_c = torch.cat([g, g.new_zeros(B, pad, *g.shape[2:])], 1).reshape(B, -1, chunk_size, *g.shape[2:])
    totals = g_c.sum(2, dtype=torch.float64)  # [B, N, H, *rest]
    prefix = torch.cat([torch.zeros_like(totals[:, :1]), totals.cumsum(1)[:, :-1]], 1)  # before each chunk
    n, r = positions // chunk_size, positions % chunk_size
    chunks, which = torch.unique(n, return_inverse=True)
    local = g_c[:, chunks].double().cumsum(2)  # [B, U, C, H, *rest] for the U chunks touched; |local| <= C max|g|
    return prefix[:, n] + local[:, which, r]


def _decayed_weights(q_t, c_t, k_j, c_j, t, j, dtype) -> torch.Tensor:
    """w_tj = q_t . (e^{c_t - c_j} o k_j) for j <= t, else 0.

    q_t: [B, Q, Hv, K]; k_j: [B, L, Hv, K]; c_t: [B, Q, Hv, *rest], c_j: [B, L, Hv, *rest] fp64 (rest = () scalar
    decay, (K,) per channel); t: [Q], j: [L] positions -> [B, Q, L, Hv] in dtype.
    """
    later = (j[None, :] > t[:, None]).to(c_t.device)  # [Q, L]: key after the query row
    diff = c_t[:, :, None] - c_j[:, None]  # [B, Q, L, Hv, *rest], <= 0 where j <= t
    mask = later.reshape(*later.shape, *(1,) * (diff.dim() - 3))
    decay = diff.masked_fill(mask, -math.inf).exp().to(dtype)
    if decay.dim() == 5:  # per channel: the decay sits inside the key dot product
        return torch.einsum("bqhk,blhk,bqlhk->bqlh", q_t, k_j, decay)
    return torch.einsum("bqhk,blhk->bqlh", q_t, k_j) * decay


def span_contributions(
    q: torch.Tensor,
    k: torch.Tensor,
    g: torch.Tensor,
    query_positions,
    spans: Sequence[Span],
    v: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
    v_new: torch.Tensor | None = None,
    o: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
) -> SpanContributions:
    """Span contributions to a gated delta-rule layer's kernel output; same contract as `naive_span_contributions`.

    Args:
        q, k: [B, T, Hk, K] raw queries/keys (normalised as in the kernel, see `kernel_qk`).
        g: [B, T, Hv] (Gated DeltaNet) or [B, T, Hv, K] (Kimi Delta Attention) log decay (<= 0).
        query_positions: [Q] sorted unique token indices t; spans: (name, start, end exclusive) key ranges.
        Then either
        v: [B, T, Hv, V] and beta: [B, T, Hv]: delta and o are recomputed with the chunked ops (chunk_size, dtype);
        or
        v_new: [B, T, Hv, V] the corrected values delta (beta included), e.g. fla's v_new, and
        o: [B, T, Hv, V] the kernel's output for the same call. Without o, o_t is rebuilt from the full causal sum
            (O(Q T) weights per head, plus initial_state's term): pass initial_state then.
        initial_state: [B, Hv, K, V] or None (zeros).
    Returns:
        SpanContributions in `dtype` (o, parts, rest [B, Q, Hv, V]; ratios [B, Q, Hv]).
    """
    if q.dim() != 4 or q.shape != k.shape:
        raise ValueError(f"q and k must both be [B, T, Hk, K], got {tuple(q.shape)} and {tuple(k.shape)}")
    B, T, _, K = k.shape
    channel_log_decay(g, K)  # raises unless g is [B, T, Hv] or [B, T, Hv, K]
    if g.shape[:2] != (B, T):
        raise ValueError(f"g must start with [B={B}, T={T}], got {tuple(g.shape)}")
    Hv = g.shape[2]
    qpos = check_span_request(query_positions, spans, T)

    if v_new is None:
        if v is None or beta is None:
            raise ValueError("pass either v and beta (delta recomputed) or v_new (fla's corrected values)")
        if g.dim() == 4:
            run = chunked_kda_state_stats(q, k, v, g, beta, initial_state, chunk_size, use_qk_l2norm, dtype,
                                          return_chunk_states=True, norms=None)
        else:
            run = chunked_state_stats(q, k, v, g, beta, initial_state, chunk_size=chunk_size,
                                      use_qk_l2norm=use_qk_l2norm, dtype=dtype, return_chunk_states=True)
        v_new, o = run.v_new, run.o
    elif v_new.shape[:3] != (B, T, Hv):
        raise ValueError(f"v_new must be [B={B}, T={T}, Hv={Hv}, V], got {tuple(v_new.shape)}")

    positions = [torch.arange(start, end) for _, start, end in spans]
    union = torch.unique(torch.cat([qpos.new_zeros(0), *positions]))  # [L] sorted token positions
    q_t, k_j = kernel_qk(q[:, qpos], k[:, union], Hv, use_qk_l2norm, dtype)  # [B, Q, Hv, K], [B, L, Hv, K]
    c_t = cumulative_log_decay_at(g, qpos, chunk_size)  # [B, Q, Hv(, K)] fp64
    w = _decayed_weights(q_t, c_t, k_j, cumulative_log_decay_at(g, union, chunk_size), qpos, union, dtype)
    delta = v_new[:, union].to(dtype)  # [B, L, Hv, V]
    parts = {}
    for (name, _, _), pos in zip(spans, positions):
        idx = torch.searchsorted(union, pos)  # the span's tokens inside the union
        parts[name] = torch.einsum("bqlh,blhv->bqhv", w[:, :, idx], delta[:, idx])  # [B, Q, Hv, V]
    union_part = torch.einsum("bqlh,blhv->bqhv", w, delta)

    if o is None:
        o = _rebuilt_output(q_t, c_t, k, g, v_new, qpos, initial_state, chunk_size, use_qk_l2norm, dtype)
    else:
        if o.shape != v_new.shape:
            raise ValueError(f"o must be shaped like v_new {tuple(v_new.shape)}, got {tuple(o.shape)}")
        o = o[:, qpos].to(dtype)
    rest = o - union_part
    return SpanContributions(query_positions=qpos, o=o, parts=parts, rest=rest, **span_shares(o, parts, rest))


def _rebuilt_output(q_t, c_t, k, g, v_new, qpos, initial_state, chunk_size, use_qk_l2norm, dtype) -> torch.Tensor:
    """o_t at the query rows from the full causal sum: sum_{j <= t} w_tj delta_j + (e^{c_t} o q_t)^T S0.

    q_t: [B, Q, Hv, K] kernel queries; c_t: [B, Q, Hv(, K)] fp64 -> [B, Q, Hv, V]. Keys up to the last query row only.
    """
    Hv = v_new.shape[2]
    keys = torch.arange(int(qpos[-1]) + 1)
    k_j = kernel_qk(k[:, :1], k[:, keys], Hv, use_qk_l2norm, dtype)[1]  # [B, L, Hv, K]
    w = _decayed_weights(q_t, c_t, k_j, cumulative_log_decay_at(g, keys, chunk_size), qpos, keys, dtype)
    o = torch.einsum("bqlh,blhv->bqhv", w, v_new[:, keys].to(dtype))
    if initial_state is not None:
        decay = c_t.exp().to(dtype)  # [B, Q, Hv(, K)], <= 1
        q_decayed = q_t * (decay if decay.dim() == 4 else decay[..., None])
        o = o + torch.einsum("bqhk,bhkv->bqhv", q_decayed, initial_state.to(dtype))
    return o
