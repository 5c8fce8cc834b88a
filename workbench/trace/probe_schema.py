"""Columns of the tables probes write (workbench/probes/): retrieval heads, the long-context sweep, state capacity,
layer ablation, routing specialisation and expert pruning. Tables marked INTERVENTION measure a modified model."""

from __future__ import annotations

import pyarrow as pa

from .column import MOE_LAYER, SEQ_ID, Column

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
    Column("needle_mass", pa.float32(), "Needle mass (workbench.analysis.needle): per query head, attention weight on "
           "the needle's tokens from the rows that predict the answer (all after the needle), mean over those rows, "
           "then over the cell's prompts, 0..1; pages show the max head; null for DeltaNet layers.", True),
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


# Activation patching (probes/patching.py): an INTERVENTION; one row per (pair, site, position range).
PATCHING_COLUMNS = (
    Column("intervention", pa.string(), "Always 'activation_patching': the corrupted prompt ran with one site's "
           "activation taken from the clean prompt (interventions/patching.py)."),
    Column("pair", pa.string(), "Clean / corrupted prompt pair id."),
    Column("site", pa.string(), "residual | mixer | head | expert | state: what was patched."),
    Column("layer", pa.int16(), "Decoder-layer index of the site."),
    Column("index", pa.int16(), "Head (site head) or expert id (site expert), else null.", True),
    Column("range", pa.string(), "Name of the position range (needle, between, question, last)."),
    Column("position_start", pa.int32(), "First patched position (state sites: the state after position_end - 1 is "
           "patched)."),
    Column("position_end", pa.int32(), "One past the last patched position."),
    Column("context_length", pa.int32(), "Prompt length in tokens."),
    Column("logit_diff", pa.float32(), "logit(answer) - logit(foil) at the last position with the patch."),
    Column("clean_logit_diff", pa.float32(), "The same on the clean prompt, unpatched."),
    Column("corrupted_logit_diff", pa.float32(), "The same on the corrupted prompt, unpatched."),
    Column("recovery", pa.float32(), "(logit_diff - corrupted) / (clean - corrupted): 0 = no effect, 1 = the clean "
           "answer fully restored; NaN where clean and corrupted agree.", True),
)

PROBE_TABLES: dict[str, tuple[Column, ...]] = {
    "retrieval": RETRIEVAL_COLUMNS,
    "needle_sweep": NEEDLE_SWEEP_COLUMNS,
    "state_capacity": STATE_CAPACITY_COLUMNS,
    "layer_ablation": LAYER_ABLATION_COLUMNS,
    "label_divergence": LABEL_DIVERGENCE_COLUMNS,
    "label_experts": LABEL_EXPERTS_COLUMNS,
    "vocab_specialisation": VOCAB_SPECIALISATION_COLUMNS,
    "expert_pruning": EXPERT_PRUNING_COLUMNS,
    "patching": PATCHING_COLUMNS,
}
