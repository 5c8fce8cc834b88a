"""Columns of the deltanet kind's tables (capture/deltanet/)."""

from __future__ import annotations

import pyarrow as pa

from ...trace.column import POSITION, SEQ_ID, Column

# DeltaNet state (capture/deltanet/): the Gated DeltaNet layers' recurrent state S (K x V per value head),
# updated per token as S_t = exp(g_t) S_{t-1} + k_t delta_t^T, delta_t = beta_t (v_t - exp(g_t) S_{t-1}^T k_t).
DELTANET_LAYER = Column("layer", pa.int16(), "Decoder-layer index of the Gated DeltaNet layer.")
DELTANET_COLUMNS = (
    SEQ_ID,
    POSITION,
    DELTANET_LAYER,
    Column(
        "state_norm_mean",
        pa.float16(),
        "||S_t||_F, Frobenius norm of the recurrent state right after token t's update, averaged over the value "
        "heads; units of v (keys are unit vectors), >= 0. float16: relative error <= 5e-4, inf above 65504.",
    ),
    Column("state_norm_max", pa.float16(), "Largest ||S_t||_F over the value heads."),
    Column(
        "decay_mean",
        pa.float16(),
        "Decay factor exp(g) in (0, 1] averaged over heads: the fraction of the state kept as token t arrives "
        "(1 = keep all); g = -exp(A_log) softplus(a + dt_bias) <= 0. float16 (absolute error <= 5e-4: a mean over "
        "heads, dominated by the slow ones); the fast heads' decays are in log_decay_min and deltanet_heads.log_decay.",
    ),
    Column(
        "log_decay_min",
        pa.float32(),
        "Smallest log decay g over heads (the fastest-forgetting head), <= 0; its decay factor is exp(g) "
        "(workbench.ops.decay.decay_factor). Stored as g in float32: exp(g) keeps ~1e-5 relative precision down "
        "to 1e-30, where a float16 exp(g) is 0.",
    ),
    Column(
        "beta_mean",
        pa.float16(),
        "Write strength beta = sigmoid(b) in (0, 1) averaged over heads: how far token t's value replaces what "
        "the state returned for its key (1 = replace).",
    ),
    Column("beta_max", pa.float16(), "Largest beta over heads."),
    Column(
        "half_life_mean",
        pa.float32(),
        "Memory half-life ln 2 / -g in tokens averaged over heads: an untouched memory decays to half after this "
        "many tokens (inf where g = 0). float32: half-lives can exceed float16's 65504.",
    ),
    Column("half_life_max", pa.float32(), "Longest half-life over heads, in tokens."),
)

DELTANET_HEADS_COLUMNS = (
    SEQ_ID,
    Column(
        "position",
        pa.int32(),
        "Token position: every token with deltanet_heads='per_head', else the positions divisible by "
        "deltanet_head_stride.",
    ),
    DELTANET_LAYER,
    Column("state_norm", pa.list_(pa.float16()), "Per value head (Hv entries, the layer's head order): ||S_t||_F."),
    Column("log_decay", pa.list_(pa.float32()), "Per value head: log decay g <= 0 (decay factor exp(g), derived "
           "on read)."),
    Column("beta", pa.list_(pa.float16()), "Per value head: write strength beta in (0, 1)."),
    Column("half_life", pa.list_(pa.float32()), "Per value head: half-life ln 2 / -g in tokens (inf where g = 0)."),
)

DELTANET_HEAD_SUMMARY_COLUMNS = (
    SEQ_ID,
    DELTANET_LAYER,
    Column("head", pa.int16(), "Value head, 0-based; it reads key head head // (Hv / Hk)."),
    Column("tokens", pa.int32(), "Tokens of the sequence summarised."),
    Column("state_norm_mean", pa.float32(), "||S_t||_F averaged over the sequence's tokens."),
    Column("state_norm_max", pa.float32(), "Largest ||S_t||_F over the sequence."),
    Column("decay_mean", pa.float32(), "exp(g) averaged over tokens, in (0, 1]."),
    Column("beta_mean", pa.float32(), "beta averaged over tokens, in (0, 1)."),
    Column("log_decay_mean", pa.float32(), "g (log decay) averaged over tokens, <= 0."),
    Column(
        "half_life",
        pa.float32(),
        "ln 2 / -log_decay_mean: the half-life in tokens of the head's geometric-mean decay (inf when it is 0).",
    ),
)

STATE_RECALL_COLUMNS = (
    SEQ_ID,
    DELTANET_LAYER,
    Column("pair", pa.int16(), "Index of the planted pair in its sequence (order of the needle spans)."),
    Column("key_pos", pa.int32(), "Token whose kernel key k_key reads the state (last token of a needle span)."),
    Column("value_pos", pa.int32(), "Token whose value v_value the readout should return (key_pos by default)."),
    Column("position", pa.int32(), "Token t after whose update the state is read, t >= key_pos."),
    Column(
        "rel_err_mean",
        pa.float16(),
        "||S_t^T k_key - v_value|| / ||v_value|| averaged over value heads, >= 0: 0 = the state returns the planted "
        "value exactly, 1 = it returns nothing, about sqrt 2 = replaced by an unrelated value of the same size.",
    ),
    Column("rel_err_min", pa.float16(), "Smallest rel_err over heads (the head that recalls best)."),
    Column("cos_mean", pa.float16(),
           "cosine(S_t^T k_key, v_value) averaged over heads, in [-1, 1] (0 for a zero readout)."),
    Column("cos_max", pa.float16(), "Largest cosine over heads."),
    Column("rel_err", pa.list_(pa.float16()), "Per value head: rel_err."),
    Column("cos", pa.list_(pa.float16()), "Per value head: cosine."),
    Column(
        "retention_cos_mean",
        pa.float32(),
        "Retention relative to what was written: cosine(S_t^T k_key, S_key^T k_key), the readout at t against the one "
        "right after the key's own write, averaged over value heads, in [-1, 1] (1 at t = key_pos). rel_err compares "
        "with the raw v, which one delta-rule write never returns exactly (S_key^T k_key = (1 - beta) old + beta v: "
        "rel_err ~ 1 - beta even with perfect memory); retention separates forgetting from write strength.",
    ),
    Column("retention_ratio_mean", pa.float32(), "||S_t^T k_key|| / ||S_key^T k_key|| averaged over value heads, >= 0: "
           "1 = the key's readout kept at full strength, 0 = forgotten (decay or overwrites); NaN where nothing was "
           "written."),
    Column("retention_cos", pa.list_(pa.float32()), "Per value head: retention cosine."),
    Column("retention_ratio", pa.list_(pa.float32()), "Per value head: retention norm ratio."),
)

STATE_SNAPSHOTS_COLUMNS = (
    SEQ_ID,
    DELTANET_LAYER,
    Column("position", pa.int32(), "Token t after whose update the state S_t was taken (state_snapshots setting)."),
    Column("head", pa.int16(), "Value head, 0-based."),
    Column(
        "eff_rank",
        pa.float32(),
        "Effective rank of S_t (K x V): exp(entropy of s_i / sum s) over its singular values s (Roy & Vetterli), "
        "in [1, min(K, V)]; 0 for an all-zero state.",
    ),
    Column("top_sv", pa.float32(), "Largest singular value of S_t, units of v."),
)

SPAN_SHARE_TYPE = pa.list_(pa.struct([pa.field("span", pa.string()), pa.field("share", pa.float32())]))

DELTANET_CONTRIBUTION_COLUMNS = (
    SEQ_ID,
    Column("position", pa.int32(), "Query token t of the analysed row: tokens of query spans and the prompt's last "
           "token (prefill calls that start the sequence)."),
    DELTANET_LAYER,
    Column("head", pa.int16(), "Value head, 0-based."),
    Column(
        "span_norm_ratio",
        SPAN_SHARE_TYPE,
        "Per span, {span, share: ||part_span(t)|| / ||o_t||}: the norm of the span's part of the layer's kernel "
        "output o_t = sum_{j<=t} exp(c_t - c_j) (q_t.k_j) delta_j (delta = corrected values, c = cumulative log "
        "decay) relative to ||o_t||, >= 0 (parts can cancel: above 1 is possible). The DeltaNet analogue of "
        "attention's span_mass. In `Trace.duckdb()` views a MAP: span_norm_ratio['needle'].",
    ),
    Column(
        "span_projection",
        SPAN_SHARE_TYPE,
        "Per span, {span, share: <part_span(t), o_t> / ||o_t||^2}: the span's signed share of o_t along o_t (the "
        "spans' and the rest's projections sum to 1). A MAP in `Trace.duckdb()` views.",
    ),
    Column("rest_norm_ratio", pa.float32(), "||o_t - parts of all spans|| / ||o_t|| (tokens in no span and the "
           "initial state)."),
    Column("rest_projection", pa.float32(), "<o_t - parts of all spans, o_t> / ||o_t||^2."),
    Column("output_norm", pa.float32(), "||o_t||, the kernel output's norm (units of v)."),
)

