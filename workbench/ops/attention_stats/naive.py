"""fp64 reference for attention-recall statistics, from full eager softmax weights.

For a query row at token position q, p_j = softmax_j(q . k_j * scaling) over keys j = 0..q (causal). From p:
    span_mass[name] = sum_{start <= j < end} p_j        (probability, 0..1)
    topk_pos/weight = the k heaviest keys, heaviest first (pos -1, weight 0 where fewer than k keys)
    entropy         = -sum_j p_j log p_j                 (nats; log(q+1) for a uniform row)
    sink_mass       = p_0                                (weight on the first token)
    mean_distance   = sum_j p_j (q - j)                  (tokens; q/2 for a uniform row)
Inputs are after rotary, as transformers' attention functions see them. GQA: query head h reads kv head h // G,
G = Hq / Hkv (transformers' repeat_kv). Every fast version (`blockwise.py`) must match these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

Span = tuple[str, int, int]  # (name, first key token, end key token exclusive)


@dataclass(frozen=True)
class AttentionStats:
    """Attention-recall statistics per (batch, query position, query head).

    query_positions: [Q]            int64 token index q of each analysed query row.
    span_mass:       name -> [B, Q, Hq]  attention mass on keys [start, end) (0..1).
    topk_pos:        [B, Q, Hq, k]  int64 key positions, heaviest first; -1 where fewer than k keys (q+1 < k).
    topk_weight:     [B, Q, Hq, k]  their weights; 0 at the -1 padding.
    entropy:         [B, Q, Hq]     nats.
    sink_mass:       [B, Q, Hq]     weight on key 0.
    mean_distance:   [B, Q, Hq]     tokens, sum_j p_j (q - j).
    """

    query_positions: torch.Tensor
    span_mass: dict[str, torch.Tensor]
    topk_pos: torch.Tensor
    topk_weight: torch.Tensor
    entropy: torch.Tensor
    sink_mass: torch.Tensor
    mean_distance: torch.Tensor


def check_request(query_positions: torch.Tensor, spans: Sequence[Span], top_k: int, num_keys: int) -> None:
    """Raise ValueError unless positions are sorted, unique, in [0, num_keys); spans lie inside the keys and
    have unique names; top_k >= 0."""
    qpos = query_positions
    if qpos.dim() != 1 or qpos.numel() == 0 or qpos.dtype.is_floating_point:
        raise ValueError(f"query_positions must be a non-empty 1-D integer tensor: {tuple(qpos.shape)}, {qpos.dtype}")
    if bool((qpos[1:] <= qpos[:-1]).any()):
        raise ValueError("query_positions must be sorted and unique")
    if int(qpos[0]) < 0 or int(qpos[-1]) >= num_keys:
        raise ValueError(f"query_positions must lie in [0, {num_keys}), got {int(qpos[0])}..{int(qpos[-1])}")
    names = [name for name, _, _ in spans]
    if len(set(names)) != len(names):
        raise ValueError(f"span names must be unique, got {names}")
    for name, start, end in spans:
        if not 0 <= start <= end <= num_keys:
            raise ValueError(f"span {name!r} = [{start}, {end}) is not inside the {num_keys} keys")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")


def check_heads(query: torch.Tensor, key: torch.Tensor) -> int:
    """query [B, Hq, T, D], key [B, Hkv, T, D] -> G = Hq / Hkv (query heads per kv head)."""
    if query.dim() != 4 or key.dim() != 4:
        raise ValueError(f"query and key must be [B, H, T, D], got {tuple(query.shape)} and {tuple(key.shape)}")
    (b, hq, t, d), (bk, hkv, tk, dk) = query.shape, key.shape
    if (b, t, d) != (bk, tk, dk) or hq % hkv != 0:
        raise ValueError(f"query {tuple(query.shape)} and key {tuple(key.shape)} mismatch (GQA needs Hq % Hkv == 0)")
    return hq // hkv


def causal_attention_weights(
    query: torch.Tensor, key: torch.Tensor, query_positions: torch.Tensor, scaling: float
) -> torch.Tensor:
    """Eager causal softmax weights for the selected query rows, in fp64.

    query: [B, Hq, T, D], key: [B, Hkv, T, D], query_positions: [Q] -> weights [B, Hq, Q, T] (0 after q).
    """
    groups = check_heads(query, key)
    qpos = query_positions.to(query.device)
    q = query[:, :, qpos].double()  # [B, Hq, Q, D]
    k = key.double().repeat_interleave(groups, dim=1)  # [B, Hq, T, D]
    logits = (q @ k.transpose(-1, -2)) * scaling  # [B, Hq, Q, T]
    key_pos = torch.arange(key.shape[-2], device=query.device)
    future = key_pos[None, :] > qpos[:, None]  # [Q, T]
    return logits.masked_fill(future, float("-inf")).softmax(dim=-1)


def stats_from_weights(
    weights: torch.Tensor, query_positions: torch.Tensor, spans: Sequence[Span], top_k: int
) -> AttentionStats:
    """Statistics from precomputed attention weights (e.g. transformers' eager `output_attentions`), in fp64.

    weights: [B, H, Q, T] rows for `query_positions` [Q], or the full [B, H, T, T] map (rows are then picked).
    Raises if any weight falls on a key after its query: the map was made without a causal mask.
    """
    num_keys = weights.shape[-1]
    check_request(query_positions, spans, top_k, num_keys)
    qpos = query_positions.to(weights.device)
    if weights.shape[-2] != qpos.numel():
        if weights.shape[-2] != num_keys:
            raise ValueError(f"weights {tuple(weights.shape)} are neither [B, H, Q={qpos.numel()}, T] nor [B, H, T, T]")
        weights = weights[:, :, qpos]
    p = weights.double().transpose(1, 2)  # [B, Q, H, T]
    key_pos = torch.arange(num_keys, device=p.device)
    future = (key_pos[None, :] > qpos[:, None])[:, None, :]  # [Q, 1, T]
    if bool((p.masked_fill(~future, 0) != 0).any()):
        raise ValueError("weights put mass on keys after their query: was the causal mask missing?")
    topk_pos, topk_weight = top_keys(p.masked_fill(future, -1.0), top_k)
    distance = (qpos[:, None] - key_pos[None, :]).double()[:, None, :]  # [Q, 1, T] tokens
    return AttentionStats(
        query_positions=qpos,
        span_mass={name: p[..., start:end].sum(-1) for name, start, end in spans},
        topk_pos=topk_pos,
        topk_weight=topk_weight,
        entropy=-torch.xlogy(p, p).sum(-1),
        sink_mass=p[..., 0],
        mean_distance=(p * distance.clamp_min(0)).sum(-1),
    )


def top_keys(p: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """p: [..., T] weights, -1 on keys that are not allowed -> (pos [..., k] int64, weight [..., k]).

    Heaviest first; positions -1 and weights 0 where fewer than k allowed keys exist.
    """
    weight, pos = p.topk(min(top_k, p.shape[-1]), dim=-1)
    pad = top_k - weight.shape[-1]
    weight = torch.nn.functional.pad(weight, (0, pad), value=-1.0)
    pos = torch.nn.functional.pad(pos, (0, pad), value=-1)
    allowed = weight >= 0
    return pos.where(allowed, -1), weight.where(allowed, 0.0)


def naive_attention_stats(
    query: torch.Tensor,
    key: torch.Tensor,
    query_positions: torch.Tensor,
    scaling: float,
    spans: Sequence[Span],
    top_k: int,
) -> AttentionStats:
    """Reference statistics from full fp64 eager weights of the selected rows.

    query: [B, Hq, T, D], key: [B, Hkv, T, D] (after rotary), query_positions: [Q] sorted unique token
    indices, scaling: logit multiplier (usually D**-0.5), spans: (name, start, end) key ranges, top_k: keys kept.
    Returns AttentionStats with fp64 tensors shaped [B, Q, Hq] (and [B, Q, Hq, top_k]).
    Memory O(Q * Hq * T): fine for tests, not for long contexts (use `blockwise_attention_stats`).
    """
    check_request(query_positions, spans, top_k, key.shape[-2])
    weights = causal_attention_weights(query, key, query_positions, scaling)
    return stats_from_weights(weights, query_positions, spans, top_k)
