"""The typed records recorders hand to the trace layer: what one capture kind saw in the forward calls since the
last collect, on the CPU. Each recorder's `collect()` returns one of these (or None); its table builder in
`workbench/trace/` turns it into Arrow tables."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RoutingCapture:
    """Routing of one forward pass, on the CPU. L = number of MoE layers captured, N = batch x tokens
    (row-major: token t of sequence b is row b*T + t), k = experts per token, E = experts.

    layers:         [L] decoder-layer index of each captured MoE layer.
    topk_ids:       [L, N, k] int16 expert ids (int32 past 32,767 experts), in the router's order (descending
                    probability for softmax routers; sigmoid routers return them unsorted).
    topk_weights:   [L, N, k] fp32 weights the experts' outputs are mixed with (renormalised when the
                    config says norm_topk_prob; sigmoid routers also scale by routed_scaling_factor).
    router_entropy, topk_mass, topk_margin: [L, N] fp32 (see ops.router_stats: which probabilities).
    shared_gate:    [L, N] fp32 sigmoid(shared_expert_gate(x)) in (0, 1); NaN where a layer has none.
    router_logits:  [L, N, E] or None when not requested.
    """

    layers: list[int]
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor
    router_entropy: torch.Tensor
    topk_mass: torch.Tensor
    topk_margin: torch.Tensor
    shared_gate: torch.Tensor
    router_logits: torch.Tensor | None


@dataclass
class AttentionCapture:
    """Attention statistics of one or more forward calls, on the CPU. L = full-attention layers captured,
    B = batch, Q = analysed query rows (all calls, in call order), H = query heads, T = tokens of all calls.

    layers:            [L] decoder-layer index of each full-attention layer.
    query_positions:   [Q] int64 absolute token position of each analysed row.
    span_mass:         name -> [L, B, Q, H] fp32 attention mass on the span's tokens (0..1).
    topk_pos:          [L, B, Q, H, k] int64 most-attended key positions, heaviest first (-1 = fewer keys).
    topk_weight:       [L, B, Q, H, k] fp32 their attention weights.
    entropy:           [L, B, Q, H] fp32 nats.   sink_mass: weight on token 0.
    mean_distance:     [L, B, Q, H] fp32 tokens, sum_j p_j (q - j).
    gate_mean:         [L, B, T, H] fp32 mean over the head dim of sigmoid(gate), per token; None without gate.
    gate_low_fraction: [L, B, T, H] fp32 fraction of the head dim with sigmoid(gate) < 0.1; None without gate.
    """

    layers: list[int]
    query_positions: torch.Tensor
    span_mass: dict[str, torch.Tensor]
    topk_pos: torch.Tensor
    topk_weight: torch.Tensor
    entropy: torch.Tensor
    sink_mass: torch.Tensor
    mean_distance: torch.Tensor
    gate_mean: torch.Tensor | None
    gate_low_fraction: torch.Tensor | None


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


@dataclass
class MTPCapture:
    """Draft acceptance of the MTP head, on the CPU. S = sequences (batch rows) seen, R = T - 1 rows per sequence:
    row t drafts token t+2 from the trunk's final-normed h_t and token t+1 (see workbench/mtp/acceptance.py).

    draft, trunk_next:  [S, R] int64 the MTP's argmax for x_{t+2} and the trunk's own greedy token there.
    accepted:           [S, R] bool draft == trunk_next (greedy speculative acceptance).
    draft_correct:      [S, R] int8 1/0 draft == x_{t+2}; -1 on the last row (x_{t+2} is past the sequence).
    p_accepted:         [S, R] fp32 the MTP's probability of trunk_next.
    mtp_layer:          layer index the MTP layer's routing rows carry (= the trunk's num_hidden_layers).
    routing:            RoutingCapture of the MTP layer (R rows per sequence), or None for a family without routers.
    """

    draft: torch.Tensor
    trunk_next: torch.Tensor
    accepted: torch.Tensor
    draft_correct: torch.Tensor
    p_accepted: torch.Tensor
    mtp_layer: int
    routing: RoutingCapture | None


@dataclass
class ExpertSaliencyCapture:
    """Expert saliency sums of the forward calls since the last collect, on the CPU. L = MoE layers, E = experts.

    layers [L]; count [L, E] int64 (token, expert) selections; gate_sum, norm_sum, reap_sum [L, E] float64: sums over
    those selections of the gate weight w, of ||e(x)||_2 (the expert's unweighted output, units of the hidden state)
    and of w * ||e(x)|| (REAP). shared_tokens [L] tokens with a gated shared expert seen (0 where none);
    share_sum [L] sum over tokens of ||c|| / (||c|| + ||r||) with c the gated shared-expert output and r the routed
    experts' weighted sum; shared_norm_sum, routed_norm_sum [L] sums of ||c|| and ||r||.
    path: how the per-expert outputs were obtained, the paths that ran joined by "+": "tap" (read inside the model's
    grouped_mm forward), "grouped" or "loop" (recomputed); see capture/saliency.py.
    """

    layers: list[int]
    count: torch.Tensor
    gate_sum: torch.Tensor
    norm_sum: torch.Tensor
    reap_sum: torch.Tensor
    shared_tokens: torch.Tensor
    share_sum: torch.Tensor
    shared_norm_sum: torch.Tensor
    routed_norm_sum: torch.Tensor
    path: str
