"""fp64 reference for DeltaNet span contributions: the gated delta rule's analogue of attention's needle mass.

Unrolling the gated delta rule from the initial state S0 (see `ops/state_norms/naive.py`) writes a layer's kernel
output at token t as an exact sum over earlier tokens:
    o_t = sum_{j <= t} w_tj delta_j  +  (e^{c_t} o q_t)^T S0
    w_tj = q_t . (e^{c_t - c_j} o k_j)
with c_t = sum_{s <= t} g_s the cumulative log decay from the sequence start (a scalar per token for Gated DeltaNet,
a K-vector for Kimi Delta Attention; o = elementwise), q_t, k_j the kernel-normalised query/key and delta_j the
corrected value written at token j (beta included: fla's `v_new`). For a span of tokens [start, end):
    part_span(t) = sum_{start <= j < min(end, t + 1)} w_tj delta_j          (units of v)
    rest(t)      = o_t - part of the union of all spans                    (includes the initial-state term)
    norm_ratio   = ||part|| / ||o_t||,   projection = <part, o_t> / ||o_t||^2   (NaN where o_t = 0)
For disjoint spans the parts and the rest add up to o_t, and their projections to 1. Unlike attention mass,
parts can cancel: a projection can be negative or above 1, a norm ratio above 1.
`naive_span_contributions` computes every w_tj delta_j explicitly (O(T) per query row, fp64); every fast version
(`gathered.py`) must match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..attention_stats.naive import Span, check_request
from ..state_norms.kda_naive import naive_kda_state_stats
from ..state_norms.naive import kernel_qk


@dataclass(frozen=True)
class SpanContributions:
    """Per (batch, query row, value head) decomposition of the kernel output o_t over named key spans.

    query_positions:  [Q]                   int64 token index t of each analysed query row.
    o:                [B, Q, Hv, V]         kernel output o_t (units of v).
    parts:            name -> [B, Q, Hv, V] the span's part of o_t.
    norm_ratio:       name -> [B, Q, Hv]    ||part|| / ||o_t|| (>= 0; NaN where o_t = 0).
    projection:       name -> [B, Q, Hv]    <part, o_t> / ||o_t||^2 (signed; NaN where o_t = 0).
    rest:             [B, Q, Hv, V]         o_t minus the part of the union of the spans (initial state included).
    rest_norm_ratio:  [B, Q, Hv];  rest_projection: [B, Q, Hv]   as above, for the rest.
    """

    query_positions: torch.Tensor
    o: torch.Tensor
    parts: dict[str, torch.Tensor]
    norm_ratio: dict[str, torch.Tensor]
    projection: dict[str, torch.Tensor]
    rest: torch.Tensor
    rest_norm_ratio: torch.Tensor
    rest_projection: torch.Tensor


def check_span_request(query_positions, spans: Sequence[Span], seq_len: int) -> torch.Tensor:
    """query_positions (sorted, unique, in [0, seq_len)) -> LongTensor [Q]; spans (name, start, end) with unique names
    inside the sequence. Raises ValueError otherwise."""
    qpos = torch.as_tensor(query_positions)
    check_request(qpos, spans, 0, seq_len)
    return qpos.long()


def channel_log_decay(g: torch.Tensor, key_dim: int) -> torch.Tensor:
    """g: [B, T, Hv] scalar or [B, T, Hv, K] per-channel log decay -> [B, T, Hv, K] (a scalar repeated on every key
    channel: the scalar gated delta rule is KDA with equal channels)."""
    if g.dim() == 3:
        return g[..., None].expand(*g.shape, key_dim)
    if g.dim() == 4 and g.shape[-1] == key_dim:
        return g
    raise ValueError(f"g must be [B, T, Hv] or [B, T, Hv, K={key_dim}], got {tuple(g.shape)}")


def span_shares(o: torch.Tensor, parts: dict[str, torch.Tensor], rest: torch.Tensor) -> dict:
    """o, each part, rest: [..., V] -> the norm_ratio / projection fields of `SpanContributions` ([...] each)."""
    o_sq = o.square().sum(-1)  # [...]
    defined = o_sq > 0
    safe = torch.where(defined, o_sq, torch.ones_like(o_sq))

    def shares(x):
        ratio = (x.square().sum(-1) / safe).sqrt()
        proj = (x * o).sum(-1) / safe
        return ratio.masked_fill(~defined, float("nan")), proj.masked_fill(~defined, float("nan"))

    per_span = {name: shares(x) for name, x in parts.items()}
    rest_ratio, rest_proj = shares(rest)
    return dict(norm_ratio={n: s[0] for n, s in per_span.items()}, projection={n: s[1] for n, s in per_span.items()},
                rest_norm_ratio=rest_ratio, rest_projection=rest_proj)


def naive_span_contributions(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    query_positions,
    spans: Sequence[Span],
    initial_state: torch.Tensor | None = None,
    use_qk_l2norm: bool = True,
) -> SpanContributions:
    """fp64 span contributions from the explicit sum over every earlier token.

    Args:
        q, k: [B, T, Hk, K] raw queries/keys (normalised as in the kernel, see `kernel_qk`).
        v: [B, T, Hv, V]; Hv a multiple of Hk.
        g: [B, T, Hv] (Gated DeltaNet) or [B, T, Hv, K] (KDA) log decay (<= 0; decay factor exp(g)).
        beta: [B, T, Hv] write strength in (0, 1).
        query_positions: [Q] sorted unique token indices t; spans: (name, start, end exclusive) key ranges.
        initial_state: [B, Hv, K, V] or None (zeros).
    Returns:
        SpanContributions in fp64; o is the token-by-token scan's output, rest the explicit sum over the tokens in
        no span plus the initial-state term (so parts + rest == o is a check of the decomposition).
    """
    B, T, Hv, V = v.shape
    qpos = check_span_request(query_positions, spans, T)
    f64 = torch.float64
    g = channel_log_decay(g, k.shape[-1]).to(f64)  # [B, T, Hv, K]
    scan = naive_kda_state_stats(q, k, v, g, beta, initial_state, use_qk_l2norm)
    qn, kn = kernel_qk(q, k, Hv, use_qk_l2norm, f64)  # [B, T, Hv, K]
    c = g.cumsum(1)  # [B, T, Hv, K]
    in_union = torch.zeros(T, dtype=torch.bool)
    for _, start, end in spans:
        in_union[start:end] = True
    S0 = None if initial_state is None else initial_state.to(f64)

    parts = {name: [] for name, _, _ in spans}
    rests = []
    for t in qpos.tolist():
        w = (qn[:, t, None] * kn[:, : t + 1] * (c[:, t, None] - c[:, : t + 1]).exp()).sum(-1)  # [B, t+1, Hv]
        terms = w[..., None] * scan.v_new[:, : t + 1]  # [B, t+1, Hv, V]: w_tj delta_j
        for name, start, end in spans:
            parts[name].append(terms[:, start : min(end, t + 1)].sum(1))  # [B, Hv, V]
        rest = terms[:, ~in_union[: t + 1]].sum(1)
        if S0 is not None:
            rest = rest + torch.einsum("bhk,bhkv->bhv", qn[:, t] * c[:, t].exp(), S0)
        rests.append(rest)
    parts = {name: torch.stack(x, 1) for name, x in parts.items()}  # [B, Q, Hv, V]
    rest = torch.stack(rests, 1)
    o = scan.o[:, qpos]
    return SpanContributions(query_positions=qpos, o=o, parts=parts, rest=rest, **span_shares(o, parts, rest))
