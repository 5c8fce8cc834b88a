"""The trace schema: every table's columns with meaning, dtype, units and sign.

A trace folder holds one hive-partitioned Parquet dataset per table (`<out>/<table>/run_id=<id>/*.parquet`),
a run manifest per run (`<out>/runs/<run_id>.json`) and `<out>/workbench.json` naming the schema version.
`run_id` is the hive partition key and, from schema 1.1, also the first column inside every file (the writer
adds it), so a reader that ignores hive partitions (HF `datasets`) still tells runs apart. Schema 1.0 folders
(run_id only in the path, span masses as a map) are read, never appended to.
Rows are one per (sequence, token) in `tokens` and one per (sequence, token, MoE layer) in `routing`.
Attention recall: one row per (sequence, span) in `spans`, per (sequence, analysed query token, full-attention
layer, query head) in `attention`, per (sequence, token, full-attention layer) in `attention_gate`, and per
(sequence, layer, head) in `retrieval`.
DeltaNet state: one row per (sequence, token, DeltaNet layer) in `deltanet`, per sampled token in
`deltanet_heads`, per (sequence, layer, value head) in `deltanet_head_summary`, per (sequence, layer, pair,
token >= key) in `state_recall`, per (sequence, layer, snapshot position, head) in `state_snapshots`, per
(sequence, analysed query token, layer, value head) in `deltanet_contribution`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1.2"
# Versions this code can read; only SCHEMA_VERSION is written. 1.0 -> 1.1: run_id stored inside every file,
# attention.span_mass a list<struct<span, mass>> (a map has no HF datasets type), new table needle_sweep.
# 1.1 -> 1.2: DeltaNet decays stored as the float32 log decay g (exp(g) derived on read; float16 exp(g) was
# subnormal or 0 for fast heads): deltanet.decay_min -> log_decay_min, deltanet_heads.decay -> log_decay;
# state retention (state_recall.retention_*), DeltaNet needle contribution
# (table deltanet_contribution), needle_sweep/state_capacity/layer_ablation probe tables.
READABLE_VERSIONS = ("1.0", "1.1", "1.2")
SCHEMA_VERSION_KEY = b"workbench.schema_version"
TABLE_KEY = b"workbench.table"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False


RUN_ID = Column("run_id", pa.string(), "Run identifier, `<UTC time>-<random hex>`; stored in every file (from "
                "schema 1.1) and the hive partition key.")
SEQ_ID = Column("seq_id", pa.string(), "Prompt id from the prompts file (unique within a run).")
POSITION = Column("position", pa.int32(), "Token position in its sequence, 0-based.")

TOKENS_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("token_id", pa.int32(), "Vocabulary id of the token."),
    Column("token", pa.string(), "The token as the tokenizer spells it (convert_ids_to_tokens)."),
    Column("label", pa.string(), "Prompt label from the prompts file (e.g. a domain), null when absent.", True),
)

ROUTING_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index (0-based) of the MoE block."),
    Column(
        "topk_ids",
        pa.list_(pa.uint16()),
        "The k experts the router chose, in the router's order (descending probability); ids in [0, E).",
    ),
    Column(
        "topk_weights",
        pa.list_(pa.float16()),
        "Weights mixing the chosen experts' outputs, same order as topk_ids; in [0, 1], summing to 1 when "
        "the config renormalises (norm_topk_prob). float16: absolute error <= 2.5e-4.",
    ),
    Column(
        "router_entropy",
        pa.float16(),
        "Entropy of softmax(router logits) over all E experts, in nats, in [0, ln E]. Low = confident router.",
    ),
    Column(
        "topk_mass",
        pa.float16(),
        "Sum of the chosen experts' probabilities before renormalisation, in (0, 1]: how much of the "
        "router's distribution the top-k covers.",
    ),
    Column(
        "topk_margin",
        pa.float16(),
        "p_(k) - p_(k+1): probability of the k-th chosen expert minus the best expert left out, >= 0. "
        "Near 0 = the last routing decision was a near tie.",
    ),
    Column(
        "shared_gate",
        pa.float16(),
        "sigmoid(shared_expert_gate(x)) in (0, 1): how much of the shared expert's output is added. "
        "Null for models without a gated shared expert.",
        True,
    ),
)

ROUTER_LOGITS_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index of the MoE block."),
    Column(
        "router_logits",
        pa.list_(pa.float16()),
        "Pre-softmax router scores for all E experts (only written when asked: E x 2 bytes per row).",
    ),
)

# Attention recall (capture/attention.py): the gated full-attention layers, per query row and head.
SPANS_COLUMNS = (
    SEQ_ID,
    Column("span", pa.string(), "Span name from the prompt's `spans` (unique within a sequence), e.g. needle."),
    Column("start_char", pa.int32(), "First character of the span in the prompt text (Python string index)."),
    Column("end_char", pa.int32(), "One past the span's last character."),
    Column(
        "start_token",
        pa.int32(),
        "First token position overlapping the span (a token belongs to a span when their character ranges "
        "overlap, so a span starting inside a token takes the whole token).",
    ),
    Column(
        "end_token",
        pa.int32(),
        "One past the span's last token; equal to start_token when no traced token covers it (cut by --max-tokens). "
        "Tokens of the span: start_token <= position < end_token.",
    ),
    Column("query", pa.bool_(), "The span's tokens were analysed as query rows in `attention` (span key query: true)."),
)

SPAN_MASS_TYPE = pa.list_(pa.struct([pa.field("span", pa.string()), pa.field("mass", pa.float32())]))

ATTENTION_COLUMNS = (
    SEQ_ID,
    Column(
        "position",
        pa.int32(),
        "Query token position q of the analysed row: every attention_stride-th token (positions N-1, 2N-1, ...), "
        "the last token, and tokens of query spans.",
    ),
    Column("layer", pa.int16(), "Decoder-layer index of the full-attention layer."),
    Column("head", pa.int16(), "Query head, 0-based; it reads key/value head head // (Hq / Hkv) (GQA)."),
    Column(
        "span_mass",
        SPAN_MASS_TYPE,
        "Per span of the sequence, {span: name, mass: attention weight summed over the span's key tokens (0..1)} "
        "(keys after q count 0). In `Trace.duckdb()` views it is a MAP: span_mass['needle'].",
    ),
    Column(
        "topk_positions",
        pa.list_(pa.int32()),
        "Key positions of the k most-attended tokens, heaviest first; -1 pads rows with fewer than k keys (q < k-1).",
    ),
    Column("topk_weights", pa.list_(pa.float32()), "Attention weights of topk_positions (0 at padding), in (0, 1]."),
    Column("entropy", pa.float32(), "Entropy of the row's attention over keys 0..q, in nats, in [0, ln(q+1)]."),
    Column("sink_mass", pa.float32(), "Attention weight on token 0 (the attention sink), 0..1."),
    Column(
        "mean_distance",
        pa.float32(),
        "Mean distance attended, sum_j p_j (q - j), in tokens, in [0, q]; q/2 for uniform attention.",
    ),
)

ATTENTION_GATE_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index of the full-attention layer."),
    Column(
        "gate_mean",
        pa.float16(),
        "Output gate g = sigmoid(gate) (gate = second half of each head's q_proj output) averaged over heads and "
        "head dims, in (0, 1). The head's attention output is multiplied by g before o_proj: 0 silences it.",
    ),
    Column("gate_low_fraction", pa.float16(), "Fraction of (head, dim) gate entries with g < 0.1, 0..1."),
    Column("head_gate_mean", pa.list_(pa.float16()), "Per query head: g averaged over the head dim, in (0, 1)."),
    Column("head_gate_low_fraction", pa.list_(pa.float16()), "Per query head: fraction of the head dim with g < 0.1."),
)

RETRIEVAL_COLUMNS = (
    SEQ_ID,
    Column("layer", pa.int16(), "Decoder-layer index of the full-attention layer."),
    Column("head", pa.int16(), "Query head, 0-based."),
    Column("steps", pa.int32(), "Greedy decoding steps scored (tokens generated while copying the needle)."),
    Column(
        "hits",
        pa.int32(),
        "Steps whose most-attended key lies in the needle span and holds the token being generated (a copy).",
    ),
    Column(
        "score",
        pa.float32(),
        "Retrieval score (Wu et al. 2024) = hits / steps, 0..1; written by probes/retrieval_heads.py.",
    ),
)

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

# Long context (written by the long-context probes): one row per cell of a needle-in-a-haystack sweep, i.e. per
# (context length, needle depth, layer, head); columns that do not apply to a layer's kind are null.
NEEDLE_SWEEP_COLUMNS = (
    Column("context_length", pa.int32(), "Prompt length in tokens of the sweep cell."),
    Column("needle_depth", pa.float32(), "Needle position as a fraction of the context, 0 (start) .. 1 (end)."),
    Column("layer", pa.int16(), "Decoder-layer index."),
    Column("layer_kind", pa.string(), "The layer's kind from config.layer_types: linear_attention or full_attention."),
    Column("head", pa.int16(), "Head (query head for attention, value head for DeltaNet); null for a layer-wide row.",
           True),
    Column("prompts", pa.int32(), "Prompts averaged in the cell."),
    Column("exact_match", pa.float32(), "Fraction of the cell's prompts answered exactly (a model-level outcome, "
           "repeated on every row of the cell), 0..1; null when not decoded.", True),
    Column("needle_mass", pa.float32(), "Attention weight on the needle from the answer's query rows, mean over "
           "prompts, 0..1; null for DeltaNet layers.", True),
    Column("deltanet_needle_contribution", pa.float32(), "||needle's part of o_t|| / ||o_t||: the norm of what the "
           "needle's tokens wrote into the DeltaNet layer's kernel output at the answer's query rows, relative to the "
           "output (deltanet_contribution.span_norm_ratio), mean over rows and prompts, >= 0 (parts can cancel, so "
           "above 1 is possible); null for attention layers.", True),
    Column("state_retention", pa.float32(), "cosine(S_t^T k, S_key^T k) for the needle's key k at the first answer "
           "query row t: what the state returns for the needle's key now against right after its write "
           "(state_recall.retention_cos_mean), in [-1, 1], 1 = kept; null for attention layers.", True),
    Column("state_retention_ratio", pa.float32(), "||S_t^T k|| / ||S_key^T k|| at the same row: the strength kept, "
           ">= 0 (0 = forgotten); null for attention layers.", True),
)

# State capacity (probes/state_capacity.py): multi-query associative recall with more and more planted pairs; one row
# per (pairs planted, context, DeltaNet layer, keys written after the planted key).
STATE_CAPACITY_COLUMNS = (
    Column("pairs", pa.int16(), "Key = value pairs planted in the prompt (1 ... 64)."),
    Column("context_length", pa.int32(), "Prompt length in tokens setting; 0 = pairs back to back (no filler), else "
           "the pairs are scattered through filler up to this many tokens (farther apart)."),
    Column("layer", pa.int16(), "Decoder-layer index of the DeltaNet layer."),
    Column("keys_after", pa.int16(), "Pairs planted after this one before the state is read (0 = the last planted)."),
    Column("prompts", pa.int32(), "Prompts averaged."),
    Column("accuracy", pa.float32(), "Fraction of the cell's queries answered exactly (teacher-forced; a model-level "
           "outcome repeated on the cell's rows), 0..1."),
    Column("retention_cos", pa.float32(), "cosine(S_t^T k, S_key^T k) of the pair's key at the first recall query "
           "(after every pair was written), mean over value heads and prompts, in [-1, 1]."),
    Column("retention_ratio", pa.float32(), "||S_t^T k|| / ||S_key^T k|| at the same token, mean over heads and "
           "prompts, >= 0."),
    Column("recall_cos", pa.float32(), "cosine(S_t^T k, v) against the pair's raw value at the same token, in [-1, 1] "
           "(state_recall.cos_mean)."),
)

# Layer ablation (probes/layer_ablation.py): an INTERVENTION, not an observation; one row per (suite, condition).
LAYER_ABLATION_COLUMNS = (
    Column("intervention", pa.string(), "Always 'ablation': these numbers come from a modified model (the chosen "
           "layers' mixer outputs replaced), not from observing the model as it is."),
    Column("condition", pa.string(), "'none' (the unmodified model), 'all full_attention', 'all linear_attention' or "
           "'layer <i>'."),
    Column("mode", pa.string(), "'zero' (mixer output set to 0) or 'mean' (replaced by its mean over the sequence); "
           "null for 'none'.", True),
    Column("layers", pa.list_(pa.int16()), "Decoder-layer indices whose token mixer (attention or DeltaNet block) was "
           "replaced."),
    Column("layer_kind", pa.string(), "The ablated layers' kind when they share one, else null.", True),
    Column("suite", pa.string(), "'passkey' (5-digit pass key in filler) or 'recall' (associative recall, 8 pairs in "
           "filler); held-out prompts."),
    Column("context_length", pa.int32(), "Prompt length in tokens."),
    Column("prompts", pa.int32(), "Prompts scored."),
    Column("exact_match", pa.float32(), "Fraction of prompts whose answer is exact (teacher-forced), 0..1."),
    Column("accuracy_drop", pa.float32(), "exact_match of 'none' minus this row's, in [-1, 1] (positive = the ablation "
           "hurt)."),
)

# Multi-token prediction (capture/mtp.py): one row per trunk position t = 0 .. T-2 of a sequence; the MTP head's
# row t reads h_t (the trunk's final-normed hidden) and token t+1 and drafts token t+2.
MTP_COLUMNS = (
    SEQ_ID,
    Column("position", pa.int32(), "Trunk position t of the row (0-based); the draft is for token t+2."),
    Column("draft_token_id", pa.int32(), "The MTP head's greedy draft of token t+2 (argmax of its logits)."),
    Column("trunk_token_id", pa.int32(), "The trunk's own greedy token at t+1 (its prediction of token t+2)."),
    Column("accepted", pa.bool_(), "draft == trunk's greedy token: greedy speculative decoding would accept it."),
    Column("draft_correct", pa.bool_(), "draft == the actual token t+2; null on the last row (t = T-2), whose t+2 "
           "is past the sequence.", True),
    Column("p_accepted", pa.float32(), "The MTP head's probability of the trunk's greedy token, 0..1 (the chance a "
           "temperature-1 draft would match a greedy trunk)."),
)

# Sparsity probes (issue 13). Expert saliency (capture, --expert-saliency): one row per (sequence, MoE layer, routed
# expert chosen at least once) in `expert_saliency`, per (sequence, MoE layer) in `shared_expert_share`. Written by
# probes: `label_divergence`, `label_experts`, `vocab_specialisation` (probes/routing_specialization.py) and
# `expert_pruning` (probes/expert_pruning.py, an intervention: rows say so).
MOE_LAYER = Column("layer", pa.int16(), "Decoder-layer index (0-based) of the MoE block.")
EXPERT_SALIENCY_COLUMNS = (
    SEQ_ID,
    MOE_LAYER,
    Column("expert", pa.int16(), "Routed expert id in [0, E)."),
    Column("count", pa.int32(), "Tokens of the sequence routed to the expert (top-k selections), >= 1."),
    Column("gate_mean", pa.float32(), "Mean gate weight w the expert's output was mixed with, over its tokens, 0..1."),
    Column("output_norm_mean", pa.float32(), "Mean ||e(x)||_2 of the expert's own (unweighted) output over its "
           "tokens, units of the hidden state."),
    Column("reap", pa.float32(), "REAP score: mean over its tokens of w x ||e(x)||_2 (router gate times expert output "
           "norm), units of the hidden state. Aggregate over sequences weighted by count."),
)
SHARED_EXPERT_SHARE_COLUMNS = (
    SEQ_ID,
    MOE_LAYER,
    Column("tokens", pa.int32(), "Tokens of the sequence."),
    Column("share_mean", pa.float32(), "Mean over tokens of ||c|| / (||c|| + ||r||), 0..1: c = sigmoid(shared gate) x "
           "shared-expert output, r = the routed experts' weighted sum (the MoE output is c + r)."),
    Column("shared_norm_mean", pa.float32(), "Mean ||c||_2 over tokens, units of the hidden state."),
    Column("routed_norm_mean", pa.float32(), "Mean ||r||_2 over tokens, units of the hidden state."),
)
PROBE_MODEL = Column("model", pa.string(), "Which weights: 'trained' (the run's model) or 'random_init' (the same "
                     "config at a seeded random init, the baseline).")
LABEL_DIVERGENCE_COLUMNS = (
    PROBE_MODEL,
    MOE_LAYER,
    Column("label_a", pa.string(), "First prompt label of the pair."),
    Column("label_b", pa.string(), "Second prompt label of the pair."),
    Column("js_bits", pa.float32(), "Jensen-Shannon divergence in bits between the two labels' expert-load "
           "distributions (top-k selection counts), 0 (same load) .. 1."),
)
LABEL_EXPERTS_COLUMNS = (
    PROBE_MODEL,
    MOE_LAYER,
    Column("label", pa.string(), "Prompt label."),
    Column("rank", pa.int16(), "1 = the label's most over-represented expert at this layer."),
    Column("expert", pa.int16(), "Routed expert id."),
    Column("fraction", pa.float32(), "Share of the label's top-k selections that went to the expert, 0..1."),
    Column("lift", pa.float32(), "fraction / the expert's share over all labels (> 1 = over-represented)."),
)
VOCAB_SPECIALISATION_COLUMNS = (
    PROBE_MODEL,
    MOE_LAYER,
    Column("token_id", pa.int32(), "Vocabulary id."),
    Column("token", pa.string(), "The token as the tokenizer spells it."),
    Column("count", pa.int32(), "Occurrences of the token in the probe's prompts."),
    Column("top_expert", pa.int16(), "Its most frequent top-1 expert at this layer."),
    Column("top_share", pa.float32(), "Fraction of its occurrences routed first to top_expert, 0..1 (1 = fixed)."),
    Column("experts", pa.int32(), "Distinct top-1 experts it went to."),
)
EXPERT_PRUNING_COLUMNS = (
    Column("intervention", pa.string(), "Always 'expert_mask': rows measure a model whose routers never choose the "
           "masked experts (logits -inf before top-k), not the model as shipped."),
    Column("criterion", pa.string(), "How experts were masked per layer: 'none' (baseline), 'frequency' (least "
           "chosen), 'reap' (lowest REAP score) or 'random' (seeded)."),
    Column("fraction", pa.float32(), "Fraction of each MoE layer's experts masked, 0..1."),
    Column("masked_per_layer", pa.int32(), "Experts masked in each MoE layer."),
    Column("suite", pa.string(), "Held-out suite measured ('heldout_loss' for the loss row)."),
    Column("n", pa.int32(), "Prompts (accuracy) or tokens (loss) measured."),
    Column("metric", pa.string(), "'exact_match' (fraction answered exactly, 0..1) or 'loss' (mean next-token cross "
           "entropy, nats)."),
    Column("value", pa.float32(), "The metric's value."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "tokens": TOKENS_COLUMNS,
    "routing": ROUTING_COLUMNS,
    "router_logits": ROUTER_LOGITS_COLUMNS,
    "spans": SPANS_COLUMNS,
    "attention": ATTENTION_COLUMNS,
    "attention_gate": ATTENTION_GATE_COLUMNS,
    "retrieval": RETRIEVAL_COLUMNS,
    "deltanet": DELTANET_COLUMNS,
    "deltanet_heads": DELTANET_HEADS_COLUMNS,
    "deltanet_head_summary": DELTANET_HEAD_SUMMARY_COLUMNS,
    "state_recall": STATE_RECALL_COLUMNS,
    "state_snapshots": STATE_SNAPSHOTS_COLUMNS,
    "deltanet_contribution": DELTANET_CONTRIBUTION_COLUMNS,
    "needle_sweep": NEEDLE_SWEEP_COLUMNS,
    "state_capacity": STATE_CAPACITY_COLUMNS,
    "layer_ablation": LAYER_ABLATION_COLUMNS,
    "mtp": MTP_COLUMNS,
    "expert_saliency": EXPERT_SALIENCY_COLUMNS,
    "shared_expert_share": SHARED_EXPERT_SHARE_COLUMNS,
    "label_divergence": LABEL_DIVERGENCE_COLUMNS,
    "label_experts": LABEL_EXPERTS_COLUMNS,
    "vocab_specialisation": VOCAB_SPECIALISATION_COLUMNS,
    "expert_pruning": EXPERT_PRUNING_COLUMNS,
}


def table_schema(table: str, with_run_id: bool = False) -> pa.Schema:
    """The Arrow schema of one table as a table builder produces it (without `run_id`; with it first when
    `with_run_id`: what the writer stores, see `file_schema`), with the schema version and every column's doc in
    the metadata."""
    try:
        columns = TABLES[table]
    except KeyError:
        raise ValueError(f"unknown trace table {table!r}; tables: {', '.join(TABLES)}") from None
    columns = (RUN_ID, *columns) if with_run_id else columns
    fields = [pa.field(c.name, c.type, nullable=c.nullable, metadata={"doc": c.doc}) for c in columns]
    return pa.schema(fields, metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: table.encode()})


def file_schema(table: str) -> pa.Schema:
    """The Arrow schema of one table's Parquet files: `run_id` first, then the table's columns."""
    return table_schema(table, with_run_id=True)


def schema_markdown() -> str:
    """All tables as Markdown, for the README and `workbench schema`."""
    lines = [f"Schema version {SCHEMA_VERSION}. Every table's first column is `run_id` (string): {RUN_ID.doc}", ""]
    for table, columns in TABLES.items():
        lines += [f"**`{table}`**", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in columns]
        lines.append("")
    return "\n".join(lines)
