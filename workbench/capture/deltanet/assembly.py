"""One delta-rule kernel call's record: the statistics of that call (ops.state_norms.dispatch) laid out as the
per-call dict the DeltaNet recorder holds until collect (its fields are DeltaNetCapture's, per call).

Rows: token t of batch row b is row b*T + t of the call. Every tensor stays on the kernel's device.
    positions [B*T]; state_norm/beta/half_life _mean and _max, decay_mean, log_decay_min [B*T] (over heads);
    head_rows [M] and head_state_norm/_log_decay/_beta/_half_life [M, H]: every token ("per_head") or every
        deltanet_head_stride-th position;
    segments [B, 2] (first row, end row of each batch row's real tokens), segment_tokens [B], segment_* sums [B, H];
    recall fields [P, B*T, H] (NaN where not computed) when the recorder holds recall pairs;
    snapshot_rows [B*Q], snapshot_states [B*Q, H, K, V].
"""

from __future__ import annotations

import torch

from ...ops.state_norms import gate_stats

AGGREGATES = ("state_norm_mean", "state_norm_max", "decay_mean", "log_decay_min", "beta_mean", "beta_max",
              "half_life_mean", "half_life_max")
PER_HEAD = ("state_norm", "log_decay", "beta", "half_life")
RECALL_FIELDS = ("recall_rel_err", "recall_cos", "recall_retention_cos", "recall_retention_ratio")
SEGMENT_SUMS = ("state_norm_sum", "state_norm_max", "decay_sum", "beta_sum", "log_decay_sum")


def call_record(stats, g: torch.Tensor, beta: torch.Tensor, start: int, path: str, settings,
                row_lengths: list[int] | None, recall_pairs: torch.Tensor | None, recall_computed: bool,
                snaps: list[int], state_shape: tuple[int, int]) -> dict:
    """stats: the call's StateStats (state_norm [B, T, H], recall [B, P, T, H] when `recall_computed`, snapshot
    states); g [B, T, H] (KDA: [B, T, H, K]) and beta [B, T, H] as the kernel took them; start: the position of the
    call's first token; settings: the DeltaNet options (deltanet_heads, deltanet_head_stride); row_lengths: real
    tokens per batch row of a right-padded prefill (None: every row is T long); recall_pairs [P, 2] held by the
    recorder (None: no recall fields); snaps: snapshot token indices inside the call; state_shape: (K, V) of the
    state, for the empty snapshot field."""
    B, T, H = g.shape[:3]
    g, beta = g.float(), beta.float()
    if g.dim() == 4:
        g = g.mean(-1)  # KDA: mean log decay over key channels (geometric-mean decay factor)
    gates = gate_stats(g, beta)
    norm = stats.state_norm  # [B, T, H] fp32
    record = {"path": path, "rows": B * T, "positions": (start + torch.arange(T)).repeat(B)}
    for name, x, extreme in (("state_norm", norm, "max"), ("beta", beta, "max"),
                             ("half_life", gates.half_life, "max")):  # each [B, T, H] -> [B*T] over heads
        record[f"{name}_mean"] = x.mean(-1).reshape(-1)
        record[f"{name}_{extreme}"] = x.amax(-1).reshape(-1)
    record["decay_mean"] = gates.decay.mean(-1).reshape(-1)
    record["log_decay_min"] = g.amin(-1).reshape(-1)  # the fastest-forgetting head's g: exp() on read
    # per-head rows: every token ("per_head") or positions divisible by the stride
    stride = 1 if settings.deltanet_heads == "per_head" else settings.deltanet_head_stride
    if stride:
        first = (-start) % stride  # first sampled token of this call; may lie past a short call's end
        local = torch.arange(first, max(first, T), stride)  # empty then (a decode step between samples)
        record["head_rows"] = (torch.arange(B)[:, None] * T + local[None, :]).reshape(-1)
        for name, x in zip(PER_HEAD, (norm, g, beta, gates.half_life)):
            record[f"head_{name}"] = x[:, first::stride].reshape(-1, H)
    else:
        record["head_rows"] = torch.zeros(0, dtype=torch.long)
        for name in PER_HEAD:
            record[f"head_{name}"] = norm.new_zeros(0, H)
    # one segment per batch row: sums over its real tokens (per-sequence head summaries combine them)
    lengths = [T] * B
    if row_lengths is not None and len(row_lengths) == B:
        lengths = [min(n, T) for n in row_lengths]  # right padding: row b's tokens are its first n_b
    record["segments"] = torch.tensor([[b * T, b * T + n] for b, n in enumerate(lengths)], dtype=torch.long)
    record["segment_tokens"] = torch.tensor(lengths, dtype=torch.long)
    if all(n == T for n in lengths):
        sums = (norm.sum(1), norm.amax(1), gates.decay.sum(1), beta.sum(1), g.sum(1))
    else:  # row by row over its first n tokens: the same reductions as a batch-1 call of n tokens
        per_row = [(norm[b, :n].sum(0), norm[b, :n].amax(0), gates.decay[b, :n].sum(0), beta[b, :n].sum(0),
                    g[b, :n].sum(0)) for b, n in enumerate(lengths)]
        sums = tuple(torch.stack(column) for column in zip(*per_row))
    for name, x in zip(SEGMENT_SUMS, sums):
        record[f"segment_{name}"] = x  # [B, H]
    if recall_pairs is not None:  # [P, B*T, H], NaN where not computed
        record["recall_pairs"] = recall_pairs
        P = recall_pairs.shape[0]
        for name in RECALL_FIELDS:  # [B, P, T, H] -> [P, B*T, H]
            value = getattr(stats, name) if recall_computed else None
            record[name] = (norm.new_full((P, B * T, H), float("nan")) if value is None
                            else value.transpose(0, 1).reshape(P, B * T, H))
    record["snapshot_rows"] = (torch.arange(B)[:, None] * T + torch.tensor(snaps, dtype=torch.long)).reshape(-1)
    if snaps:  # spectra are computed on the host at collect (an SVD per head is slow on the GPU)
        record["snapshot_states"] = stats.snapshot_states.reshape(-1, *stats.snapshot_states.shape[2:])
    else:
        record["snapshot_states"] = norm.new_zeros(0, H, *state_shape)
    return record
