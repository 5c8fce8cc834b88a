"""Draft acceptance of an MTP head, teacher-forced over a sequence (pure tensor functions, no hooks).

For a sequence x_0 .. x_{T-1}, the trunk's logits at t predict x_{t+1}; the MTP row t (inputs h_t and x_{t+1})
drafts x_{t+2}. Speculative decoding with one draft token accepts the draft when it equals what the trunk
itself produces at t+1. Per row t = 0 .. T-2:

    draft            argmax of the MTP logits at row t                              (the drafted x_{t+2})
    trunk_next       argmax of the trunk logits at t+1                              (the trunk's own x_{t+2})
    accepted         draft == trunk_next                                            (greedy acceptance)
    draft_correct    draft == x_{t+2}           (None for the last row, t = T-2: x_{t+2} is not in the sequence)
    p_accepted       the MTP's probability of trunk_next (the accepted token)       (acceptance under sampling
                     at temperature 1 with a greedy target would be this probability)
    tie              the trunk's two largest logits at t+1, or the head's at row t, are exactly equal: which token
                     is "the" argmax is arbitrary there, so the row is neither accepted nor rejected; analyses count
                     ties as their own share (bf16 logits tie often: 17% of accepted rows of a bf16 nano run)
"""

from __future__ import annotations

import torch

POSITION_BUCKETS = (0, 64, 256, 1024, 4096, 16384, 65536)


def acceptance_tensors(input_ids: torch.Tensor, trunk_logits: torch.Tensor, mtp_logits: torch.Tensor) -> dict:
    """The per-row quantities as tensors on the logits' device (one batch row; no host sync).
    input_ids: [T] int; trunk_logits: [T, V]; mtp_logits: [T-1, V] (row t drafts x_{t+2}).
    Returns draft, trunk_next, accepted, tie: [T-1]; draft_correct: [T-2]; p_accepted: [T-1] float32."""
    T = input_ids.shape[0]
    if trunk_logits.shape[0] != T or mtp_logits.shape[0] != T - 1:
        raise ValueError(f"expected trunk logits [T={T}, V] and MTP logits [T-1={T - 1}, V], got "
                         f"{tuple(trunk_logits.shape)} and {tuple(mtp_logits.shape)}")
    draft = mtp_logits.argmax(-1)  # [T-1]
    trunk_next = trunk_logits[1:].argmax(-1)  # [T-1]: the trunk's own token for x_{t+2}
    chosen = mtp_logits.gather(-1, trunk_next[:, None])[:, 0].float()  # [T-1]
    p_accepted = torch.exp(chosen - torch.logsumexp(mtp_logits.float(), dim=-1))  # softmax at trunk_next
    trunk_top2, head_top2 = trunk_logits[1:].topk(2, dim=-1).values, mtp_logits.topk(2, dim=-1).values  # [T-1, 2]
    tie = (trunk_top2[:, 0] == trunk_top2[:, 1]) | (head_top2[:, 0] == head_top2[:, 1])
    return {"draft": draft, "trunk_next": trunk_next, "accepted": draft == trunk_next,
            "draft_correct": draft[: T - 2] == input_ids[2:], "p_accepted": p_accepted, "tie": tie}


def acceptance_rows(input_ids: torch.Tensor, trunk_logits: torch.Tensor, mtp_logits: torch.Tensor) -> dict:
    """`acceptance_tensors` as lists of length T-1, with position = t (the row's trunk position) and
    draft_correct None on the last row (x_{t+2} is past the sequence)."""
    rows = {name: t.tolist() for name, t in acceptance_tensors(input_ids, trunk_logits, mtp_logits).items()}
    rows["draft_correct"].append(None)
    return {"position": list(range(input_ids.shape[0] - 1)), **rows}


def position_bucket(position: int, edges=POSITION_BUCKETS) -> str:
    """The bucket a position falls in, as "lo-hi" (hi exclusive), or ">=lo" past the last edge."""
    for lo, hi in zip(edges, edges[1:]):
        if lo <= position < hi:
            return f"{lo}-{hi}"
    return f">={edges[-1]}"
