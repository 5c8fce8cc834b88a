"""Qwen3-Next's multi-token-prediction (MTP) head, built around a loaded trunk.

transformers drops the checkpoint's `mtp.*` tensors (`_keys_to_ignore_on_load_unexpected = [r"^mtp.*"]` in
`Qwen3NextForCausalLM`); serving engines load them to draft one token ahead. This module rebuilds that head
from the trunk's own classes, so it computes exactly what the serving implementations compute:

    row t (one per trunk position t = 0 .. T-2), predicting token x_{t+2}:
        e_t = pre_fc_norm_embedding(embed(x_{t+1}))         # [B, T-1, H]   the NEXT token's embedding
        g_t = pre_fc_norm_hidden(h_t)                       # [B, T-1, H]   h_t: trunk's FINAL-NORMED hidden
        u_t = fc(cat[e_t, g_t])                             # [B, T-1, H]   fc: Linear 2H -> H, no bias
        u   = decoder_layer(u, rotary at positions t, causal mask over the MTP's own rows)
        logits_t = lm_head(norm(u_t))                       # [B, T-1, V]   the trunk's (tied) lm_head

Checked against the public serving code:
- vLLM `vllm/model_executor/models/qwen3_next_mtp.py`, `Qwen3NextMultiTokenPredictor.forward` (lines ~113-131
  of the revision read on 2026-12-01): `inputs_embeds = pre_fc_norm_embedding(embed(input_ids))`,
  `hidden_states = pre_fc_norm_hidden(hidden_states)`, `fc(torch.cat([inputs_embeds, hidden_states], -1))`
  (embedding FIRST), one `Qwen3NextDecoderLayer(layer_type="full_attention")` under `mtp.layers.{i}`, then
  `self.norm`; `compute_logits` uses the shared `lm_head`; `load_weights` maps `mtp.` -> the predictor and
  shares `embed_tokens` / `lm_head` with the trunk. Its norms are `GemmaRMSNorm` (x * (1 + w)), the same
  class the trunk uses (`Qwen3NextRMSNorm` in transformers).
- vLLM's proposer (`vllm/v1/spec_decode/eagle.py`, `propose`): `input_ids[:n-1] = target_token_ids[1:]`
  (tokens shifted left by one) while `positions = target_positions` and `hidden_states =
  target_hidden_states` are NOT shifted: row t pairs x_{t+1} with h_t at rotary position t. The target
  hidden states are what the trunk model returns, i.e. after its final norm (`Qwen3NextModel.forward` ends
  with `hidden_states, _ = self.norm(hidden_states, residual)`).
- The MTP layer keeps its own KV (its own attention over the MTP rows 0..t), never the trunk's.

Teacher-forced here: every row uses the actual next token x_{t+1} (in serving it is the trunk's sampled
token, which greedy acceptance compares against).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..adapters.upstream import cache_keyword

FULL_ATTENTION = "full_attention"


def _first_full_attention_layer(model: nn.Module) -> nn.Module:
    """The trunk's first full-attention decoder layer: its class builds the MTP layer."""
    decoder = model.get_decoder()
    kinds = list(getattr(decoder.config, "layer_types", None) or [])
    for layer, kind in zip(decoder.layers, kinds):
        if kind == FULL_ATTENTION:
            return layer
    raise ValueError("the model has no full-attention layer to build an MTP layer from (config.layer_types)")


class MTPHead(nn.Module):
    """The `mtp.*` module of a Qwen3-Next checkpoint (state-dict keys = checkpoint keys without `mtp.`,
    experts fused as transformers stores them: `layers.0.mlp.experts.gate_up_proj [E, 2I, H]`).

    Built from the trunk's own classes: its full-attention decoder layer class (with a copy of the config
    whose only layer is full attention, so the layer gets gated attention and the sparse MoE) and its RMSNorm.
    """

    def __init__(self, model: nn.Module, num_layers: int = 1):
        super().__init__()
        config = model.get_decoder().config
        template = _first_full_attention_layer(model)
        layer_config = copy.deepcopy(config)
        layer_config.num_hidden_layers = num_layers
        layer_config.layer_types = [FULL_ATTENTION] * num_layers
        layer_config.mlp_only_layers = []
        norm_cls = type(model.get_decoder().norm)
        hidden, eps = config.hidden_size, config.rms_norm_eps
        self.fc = nn.Linear(2 * hidden, hidden, bias=False)
        self.pre_fc_norm_embedding = norm_cls(hidden, eps=eps)
        self.pre_fc_norm_hidden = norm_cls(hidden, eps=eps)
        self.layers = nn.ModuleList(type(template)(layer_config, i) for i in range(num_layers))
        self.norm = norm_cls(hidden, eps=eps)
        self.config = layer_config

    def forward(self, trunk_hidden: torch.Tensor, next_embeds: torch.Tensor, position_embeddings,
                attention_mask, position_ids: torch.Tensor, step: int = 0) -> torch.Tensor:
        """trunk_hidden, next_embeds: [B, R, H] (row t: h_t and embed(x_{t+1})) -> normed MTP hidden [B, R, H]."""
        fused = self.fc(torch.cat([self.pre_fc_norm_embedding(next_embeds),
                                   self.pre_fc_norm_hidden(trunk_hidden)], dim=-1))  # [B, R, H]
        hidden = self.layers[step % len(self.layers)](
            fused, position_embeddings=position_embeddings, attention_mask=attention_mask, position_ids=position_ids)
        return self.norm(hidden)


def mtp_rows(model: nn.Module, head: MTPHead, next_ids: torch.Tensor, hidden: torch.Tensor,
             step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MTP rows r = 0 .. R-1 at rotary positions r, causal over each other: row r reads hidden[:, r] (a trunk's
    final-normed hidden h_r, or a draft row's MTP output) and the embedding of next_ids[:, r].

    next_ids: [B, R] int; hidden: [B, R, H]. Returns (logits [B, R, V], the MTP's normed output [B, R, H])."""
    from transformers.masking_utils import create_causal_mask

    decoder = model.get_decoder()
    next_embeds = model.get_input_embeddings()(next_ids)  # [B, R, H]
    hidden = hidden.to(next_embeds.dtype)
    position_ids = torch.arange(next_ids.shape[1], device=next_ids.device).unsqueeze(0)  # [1, R]
    position_embeddings = decoder.rotary_emb(hidden, position_ids)
    no_cache = {cache_keyword(create_causal_mask): None}  # `cache` from transformers 5.25, `past_key_values` before
    mask = create_causal_mask(config=head.config, inputs_embeds=hidden, attention_mask=None, position_ids=position_ids,
                              **no_cache)
    out = head(hidden, next_embeds, position_embeddings, mask, position_ids, step=step)
    return model.get_output_embeddings()(out), out  # [B, R, V], [B, R, H]


def mtp_logits(model: nn.Module, head: MTPHead, input_ids: torch.Tensor, trunk_hidden: torch.Tensor) -> torch.Tensor:
    """Teacher-forced MTP logits: row t (t = 0 .. T-2) predicts x_{t+2} from h_t and x_{t+1}.

    input_ids: [B, T] int; trunk_hidden: [B, T, H], the trunk's final-normed hidden states
    (`model.model(...).last_hidden_state`). Returns [B, T-1, V] in the head's dtype.
    """
    if input_ids.shape[1] < 2:
        raise ValueError(f"MTP needs at least 2 tokens (row t uses x_(t+1)), got {input_ids.shape[1]}")
    rows = input_ids.shape[1] - 1
    return mtp_rows(model, head, input_ids[:, 1:], trunk_hidden[:, :rows])[0]
