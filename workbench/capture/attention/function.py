"""The attention function the capture swaps in, registered once per delegate with transformers' interfaces.

`workbench_recall_sdpa` / `workbench_recall_eager` are registered with AttentionInterface; each returns exactly
what its delegate (transformers' sdpa function, or the model file's own `eager_attention_forward`) returns, and
hands (module, query, key, scaling) to the recorder that the capture context listed for that module. The same
names are registered with AttentionMaskInterface as the delegate's own mask builder: without that, transformers
would silently build NO causal mask for an unknown implementation name.

Outside a capture context (a module nobody listed) the function only delegates.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from ...ops.attention_stats import AttentionStats, Span
from ...ops.attention_stats.blockwise import accumulate_stats, running_logsumexp, to_stats
from ...ops.attention_stats.naive import check_request

PREFIX = "workbench_recall_"
DELEGATES = ("sdpa", "eager")

# id(attention module) -> callback(module, query, key, scaling); filled and emptied by the capture context.
ACTIVE: dict[int, Callable] = {}


def recall_name(delegate: str) -> str:
    return PREFIX + delegate


def delegate_function(delegate: str, module: torch.nn.Module) -> Callable:
    """The attention function `delegate` resolves to for `module`, as transformers would pick it."""
    if delegate == "eager":  # not in ALL_ATTENTION_FUNCTIONS: each modeling file has its own
        eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
        if eager is None:
            raise RuntimeError(f"{type(module).__module__} has no eager_attention_forward to delegate to")
        return eager
    return ALL_ATTENTION_FUNCTIONS[delegate]


def _recall_function(delegate: str) -> Callable:
    def recall_attention(module, query, key, value, attention_mask, **kwargs):
        output = delegate_function(delegate, module)(module, query, key, value, attention_mask, **kwargs)
        callback = ACTIVE.get(id(module))
        if callback is not None:
            scaling = kwargs.get("scaling")
            callback(module, query, key, query.shape[-1] ** -0.5 if scaling is None else scaling)
        return output

    recall_attention.__name__ = f"recall_attention_{delegate}"
    return recall_attention


for _delegate in DELEGATES:  # one registry call per variant
    AttentionInterface.register(recall_name(_delegate), _recall_function(_delegate))
    AttentionMaskInterface.register(recall_name(_delegate), ALL_MASK_ATTENTION_FUNCTIONS[_delegate])


def select_rows(first: int, num_rows: int, stride: int, named: Sequence[int]) -> list[int]:
    """Absolute positions analysed among the query rows first..first+num_rows-1: every stride-th token
    (positions stride-1, 2*stride-1, ...; none when stride is 0), the last row, and the named positions."""
    last = first + num_rows - 1
    rows = {last}
    if stride > 0:
        rows.update(range(first + (-(first + 1)) % stride, last + 1, stride))
    rows.update(p for p in named if first <= p <= last)
    return sorted(rows)


def rows_attention_stats(
    query: torch.Tensor,
    key: torch.Tensor,
    rows: Sequence[int],
    scaling: float,
    spans: Sequence[Span],
    top_k: int,
    block_size: int,
    max_rows: int = 256,
) -> AttentionStats:
    """`blockwise_attention_stats` for query rows that are the last Tq of Tk keys (Tq = Tk in a full forward,
    Tq = 1 when decoding with a cache), `max_rows` rows at a time: memory O(max_rows * Hq * block_size).

    query: [B, Hq, Tq, D], key: [B, Hkv, Tk, D] (after rotary), rows: sorted absolute positions in
    [Tk - Tq, Tk). Spans are cut to the Tk keys. Returns fp32 stats shaped [B, Q, Hq] (+ [.., top_k]).
    """
    batch, num_q_heads, num_queries, head_dim = query.shape
    num_keys = key.shape[-2]
    groups = num_q_heads // key.shape[1]
    offset = num_keys - num_queries  # absolute position of query row 0
    spans = [(name, min(start, num_keys), min(end, num_keys)) for name, start, end in spans]
    qpos = torch.as_tensor(rows, dtype=torch.int64, device=query.device)
    check_request(qpos, spans, top_k, num_keys)
    if int(qpos[0]) < offset:
        raise ValueError(f"rows {rows[:3]}... start before the first query row {offset}")
    parts = []
    for lo in range(0, qpos.numel(), max_rows):
        chunk = qpos[lo : lo + max_rows]
        q = query[:, :, chunk - offset].float() * scaling  # [B, Hq, Q', D]
        q = q.view(batch, num_q_heads // groups, groups, chunk.numel(), head_dim)  # [B, Hkv, G, Q', D]
        lse = running_logsumexp(q, key, chunk, block_size)
        parts.append(to_stats(accumulate_stats(q, key, chunk, lse, spans, top_k, block_size), chunk, spans))
    if len(parts) == 1:
        return parts[0]

    def cat(name):
        return torch.cat([getattr(p, name) for p in parts], dim=1)

    return AttentionStats(
        query_positions=qpos,
        span_mass={name: torch.cat([p.span_mass[name] for p in parts], dim=1) for name, _, _ in spans},
        topk_pos=cat("topk_pos"),
        topk_weight=cat("topk_weight"),
        entropy=cat("entropy"),
        sink_mass=cat("sink_mass"),
        mean_distance=cat("mean_distance"),
    )
