"""Attention-recall statistics computed blockwise over keys: memory O(Q * Hq * block_size), never T x T.

Pass 1 walks the key blocks and folds each block's log-sum-exp into a running one (online softmax):
    lse <- logaddexp(lse, logsumexp_j in block s_j),   s_j = (q * scaling) . k_j,  -inf for j > q.
Pass 2 walks them again with log p_j = s_j - lse and accumulates span masses, entropy -sum p log p, the sink
weight p_0, the mean distance sum p (q - j), and a running top-k (block top-k merged with the running one).
Only the selected query rows are computed, and a block only touches rows with q >= its first key (rows are
sorted, so those rows are a suffix). GQA: queries are viewed [B, Hkv, G*Q, D] against each kv head's block,
so the key is never repeated. Definitions of every statistic: `naive.py`, the reference this must match.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from .naive import AttentionStats, Span, check_heads, check_request


def blockwise_attention_stats(
    query: torch.Tensor,
    key: torch.Tensor,
    query_positions: torch.Tensor,
    scaling: float,
    spans: Sequence[Span],
    top_k: int,
    block_size: int = 4096,
    compute_dtype: torch.dtype = torch.float32,
) -> AttentionStats:
    """Causal attention statistics of the rows `query_positions`, key block by key block.

    query: [B, Hq, T, D], key: [B, Hkv, T, D] (after rotary; any float dtype), query_positions: [Q] sorted
    unique token indices, scaling: logit multiplier (usually D**-0.5), spans: (name, start, end) key ranges,
    top_k: heaviest keys kept per row, block_size: keys per block.
    Returns AttentionStats in `compute_dtype`, shaped [B, Q, Hq] (and [B, Q, Hq, top_k]).
    """
    groups = check_heads(query, key)
    check_request(query_positions, spans, top_k, key.shape[-2])
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    batch, num_q_heads, _, head_dim = query.shape
    qpos = query_positions.to(query.device)
    q = query[:, :, qpos].to(compute_dtype) * scaling  # [B, Hq, Q, D]
    q = q.view(batch, num_q_heads // groups, groups, qpos.numel(), head_dim)  # [B, Hkv, G, Q, D]
    lse = running_logsumexp(q, key, qpos, block_size)  # [B, Hkv, G, Q]
    acc = accumulate_stats(q, key, qpos, lse, spans, top_k, block_size)
    return to_stats(acc, qpos, spans)


def key_blocks(key: torch.Tensor, qpos: torch.Tensor, block_size: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield (first key position, first row with q >= it, key block [B, Hkv, Tb, D]) up to the last row's q."""
    num_keys = int(qpos[-1]) + 1  # keys after the last analysed row are never attended
    for start in range(0, num_keys, block_size):
        first_row = int(torch.searchsorted(qpos, start))
        yield start, first_row, key[:, :, start : min(start + block_size, num_keys)]


def block_logits(
    q: torch.Tensor, key_block: torch.Tensor, row_pos: torch.Tensor, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """q: [B, Hkv, G, Q, D] (scaled), key_block: [B, Hkv, Tb, D], row_pos: [Q] ->
    (logits [B, Hkv, G, Q, Tb] with -inf after each row's q, future mask [Q, Tb])."""
    b, hkv, g, nq, d = q.shape
    k = key_block.to(q.dtype).transpose(-1, -2)  # [B, Hkv, D, Tb]
    logits = (q.reshape(b, hkv, g * nq, d) @ k).view(b, hkv, g, nq, -1)  # [B, Hkv, G, Q, Tb]
    key_pos = torch.arange(start, start + key_block.shape[-2], device=q.device)
    future = key_pos[None, :] > row_pos[:, None]  # [Q, Tb]
    return logits.masked_fill(future, float("-inf")), future


def running_logsumexp(q: torch.Tensor, key: torch.Tensor, qpos: torch.Tensor, block_size: int) -> torch.Tensor:
    """Pass 1: log sum_{j <= q} exp(s_j) per row. q: [B, Hkv, G, Q, D] -> [B, Hkv, G, Q]."""
    lse = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
    for start, r0, key_block in key_blocks(key, qpos, block_size):
        logits, _ = block_logits(q[..., r0:, :], key_block, qpos[r0:], start)
        lse[..., r0:] = torch.logaddexp(lse[..., r0:], logits.logsumexp(-1))  # key `start` is valid: finite
    return lse


def accumulate_stats(
    q: torch.Tensor,
    key: torch.Tensor,
    qpos: torch.Tensor,
    lse: torch.Tensor,
    spans: Sequence[Span],
    top_k: int,
    block_size: int,
) -> dict[str, torch.Tensor]:
    """Pass 2: sums over key blocks of p = exp(s - lse). Returns [B, Hkv, G, Q] (+ [.., k]) accumulators,
    top-k as log weights (-inf at padding)."""
    zeros = torch.zeros_like(lse)
    acc = {"entropy": zeros.clone(), "sink_mass": zeros.clone(), "mean_distance": zeros.clone()}
    acc.update({f"span:{name}": zeros.clone() for name, _, _ in spans})
    acc["topk_logp"] = torch.full((*lse.shape, top_k), float("-inf"), dtype=lse.dtype, device=lse.device)
    acc["topk_pos"] = torch.full((*lse.shape, top_k), -1, dtype=torch.int64, device=lse.device)
    for start, r0, key_block in key_blocks(key, qpos, block_size):
        logits, future = block_logits(q[..., r0:, :], key_block, qpos[r0:], start)
        logp = logits - lse[..., r0:, None]  # [B, Hkv, G, Q', Tb], -inf after q
        p = logp.exp()
        acc["entropy"][..., r0:] -= (p * logp.masked_fill(future, 0.0)).sum(-1)
        distance = (qpos[r0:, None] - torch.arange(start, start + p.shape[-1], device=p.device)).to(p.dtype)
        acc["mean_distance"][..., r0:] += (p * distance.clamp_min(0)).sum(-1)  # [Q', Tb] tokens
        if start == 0:
            acc["sink_mass"][..., r0:] = p[..., 0]
        for name, span_start, span_end in spans:
            lo, hi = max(span_start, start) - start, min(span_end, start + p.shape[-1]) - start
            if lo < hi:
                acc[f"span:{name}"][..., r0:] += p[..., lo:hi].sum(-1)
        merge_topk(acc["topk_logp"], acc["topk_pos"], logp, start, r0)
    return acc


def merge_topk(run_logp: torch.Tensor, run_pos: torch.Tensor, logp: torch.Tensor, start: int, r0: int) -> None:
    """Fold a block's top-k into the running top-k of rows r0.. in place.
    run_*: [B, Hkv, G, Q, k]; logp: [B, Hkv, G, Q - r0, Tb] log weights of keys start..start+Tb-1."""
    top_k = run_logp.shape[-1]
    if top_k == 0:
        return
    block_logp, block_idx = logp.topk(min(top_k, logp.shape[-1]), dim=-1)
    cand_logp = torch.cat([run_logp[..., r0:, :], block_logp], dim=-1)
    cand_pos = torch.cat([run_pos[..., r0:, :], block_idx + start], dim=-1)
    best_logp, best = cand_logp.topk(top_k, dim=-1)
    run_logp[..., r0:, :] = best_logp
    run_pos[..., r0:, :] = cand_pos.gather(-1, best)


def to_stats(acc: dict[str, torch.Tensor], qpos: torch.Tensor, spans: Sequence[Span]) -> AttentionStats:
    """[B, Hkv, G, Q] accumulators -> AttentionStats shaped [B, Q, Hq] (query head h = kv head * G + g)."""

    def per_head(x: torch.Tensor) -> torch.Tensor:
        b, hkv, g, nq = x.shape[:4]
        return x.reshape(b, hkv * g, nq, *x.shape[4:]).transpose(1, 2)  # [B, Q, Hq, ...]

    padding = torch.isneginf(acc["topk_logp"])
    return AttentionStats(
        query_positions=qpos,
        span_mass={name: per_head(acc[f"span:{name}"]) for name, _, _ in spans},
        topk_pos=per_head(acc["topk_pos"].masked_fill(padding, -1)),
        topk_weight=per_head(acc["topk_logp"].exp()),
        entropy=per_head(acc["entropy"]),
        sink_mass=per_head(acc["sink_mass"]),
        mean_distance=per_head(acc["mean_distance"]),
    )
