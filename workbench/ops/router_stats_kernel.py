"""The Triton kernel behind `router_stats.router_token_stats` on the GPU: every per-token router summary in one pass
over the logits (see router_stats.py for the definitions). Loaded through ops/triton_support.py."""

import triton
import triton.language as tl


@triton.jit
def router_summaries(
    logits_ptr, ids_ptr, entropy_ptr, mass_ptr, margin_ptr,
    N, E, s_logits, s_ids,
    TOPK: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_E: tl.constexpr, SIGMOID: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    experts = tl.arange(0, BLOCK_E)
    live = rows < N
    real = live[:, None] & (experts[None, :] < E)
    x = tl.load(logits_ptr + rows[:, None] * s_logits + experts[None, :], mask=real, other=0.0).to(tl.float32)
    if SIGMOID:  # scores s = sigmoid(x), renormalised: log p = log s - logsumexp(log s)
        x = tl.minimum(x, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(x)))  # logsigmoid, stable on both sides
    x = tl.where(real, x, -1e30)  # finite: padding lanes give p = 0 and p log p = 0, rows past N no NaN
    top = tl.max(x, axis=1)
    shifted = x - top[:, None]
    log_z = tl.log(tl.sum(tl.exp(shifted), axis=1))
    log_p = shifted - log_z[:, None]  # log-probabilities over the E experts (-inf past E)
    p = tl.exp(log_p)
    entropy = -tl.sum(tl.where(real, p * log_p, 0.0), axis=1)

    chosen = tl.zeros((BLOCK_N, BLOCK_E), dtype=tl.int1)
    for j in tl.static_range(TOPK):
        expert = tl.load(ids_ptr + rows * s_ids + j, mask=live, other=-1).to(tl.int32)
        chosen = chosen | (experts[None, :] == expert[:, None])
    mass = tl.sum(tl.where(chosen, p, 0.0), axis=1)
    smallest_chosen = tl.min(tl.where(chosen, log_p, float("inf")), axis=1)
    largest_left_out = tl.max(tl.where(chosen | ~real, -float("inf"), log_p), axis=1)
    margin = tl.where(TOPK < E, tl.exp(smallest_chosen) - tl.exp(largest_left_out), 0.0)  # k = E: nothing left out
    tl.store(entropy_ptr + rows, entropy, mask=live)
    tl.store(mass_ptr + rows, mass, mask=live)
    tl.store(margin_ptr + rows, margin, mask=live)
