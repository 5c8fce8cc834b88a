"""What the DeltaNet recorder hands on: DeltaNetCapture."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DeltaNetCapture:
    """Delta-rule state statistics (Gated DeltaNet or Kimi Delta Attention) of the forward calls since the last
    collect, on the CPU.

    L = DeltaNet layers, N rows = the calls' tokens concatenated (within a call, token t of batch row b is row
    b*T + t, as in RoutingCapture), H = value heads. All float fields fp32.
    layers [L]; positions [N] int64 token position in its sequence (continues across cached decode calls).
    state_norm_mean/_max [L, N]: mean/max over heads of ||S_t||_F after token t's update (units of v).
    decay_mean [L, N]: mean over heads of exp(g); log_decay_min [L, N]: smallest g over heads (KDA: g averaged
        over key channels first); beta_mean/_max [L, N];
    half_life_mean/_max [L, N]: ln2 / -g in tokens.
    head_rows [M]: rows with per-head values; head_state_norm, head_log_decay (g), head_beta, head_half_life
        [L, M, H].
    segments [S, 2]: (first row, end row) of each (call, batch row); segment_tokens [S];
        segment_state_norm_sum/_max, segment_decay_sum, segment_beta_sum, segment_log_decay_sum [L, S, H].
    recall_pairs [P, 2] (key_pos, value_pos) or None; recall_rel_err, recall_cos [L, P, N, H]: readout
        r = S_t^T k_key against v_value (see ops.state_norms); NaN before key_pos and on rows not computed
        (decode steps, calls continuing a cached state).
    recall_retention_cos, recall_retention_ratio [L, P, N, H]: r_t against r_key, the readout right after the key's
        own write (ops.state_norms.retention_metrics); NaN where recall is.
    snapshot_rows [Q]; snapshot_eff_rank, snapshot_top_sv [L, Q, H] (computed on the host).
    path: the paths that ran, joined by "+": "torch", "fla" (the model's own chunk states), "fla-recompute".
    contribution_spans [S] span names; contribution_positions [R] query token of each analysed row (R = analysed
        calls x batch rows x query rows); contribution_norm_ratio, contribution_projection [L, S, R, H]: the span's
        part of the kernel output o_t, ||part|| / ||o_t|| and <part, o_t> / ||o_t||^2; contribution_rest_norm_ratio,
        contribution_rest_projection [L, R, H]: the same for o_t minus every span's part; contribution_output_norm
        [L, R, H]: ||o_t||. None without named spans (capture/deltanet/contribution.py).
    """

    layers: list[int]
    positions: torch.Tensor
    state_norm_mean: torch.Tensor
    state_norm_max: torch.Tensor
    decay_mean: torch.Tensor
    log_decay_min: torch.Tensor
    beta_mean: torch.Tensor
    beta_max: torch.Tensor
    half_life_mean: torch.Tensor
    half_life_max: torch.Tensor
    head_rows: torch.Tensor
    head_state_norm: torch.Tensor
    head_log_decay: torch.Tensor
    head_beta: torch.Tensor
    head_half_life: torch.Tensor
    segments: torch.Tensor
    segment_tokens: torch.Tensor
    segment_state_norm_sum: torch.Tensor
    segment_state_norm_max: torch.Tensor
    segment_decay_sum: torch.Tensor
    segment_beta_sum: torch.Tensor
    segment_log_decay_sum: torch.Tensor
    recall_pairs: torch.Tensor | None
    recall_rel_err: torch.Tensor | None
    recall_cos: torch.Tensor | None
    recall_retention_cos: torch.Tensor | None
    recall_retention_ratio: torch.Tensor | None
    snapshot_rows: torch.Tensor
    snapshot_eff_rank: torch.Tensor
    snapshot_top_sv: torch.Tensor
    path: str
    contribution_spans: list[str] | None = None
    contribution_positions: torch.Tensor | None = None
    contribution_norm_ratio: torch.Tensor | None = None
    contribution_projection: torch.Tensor | None = None
    contribution_rest_norm_ratio: torch.Tensor | None = None
    contribution_rest_projection: torch.Tensor | None = None
    contribution_output_norm: torch.Tensor | None = None
