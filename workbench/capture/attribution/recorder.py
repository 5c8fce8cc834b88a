"""Direct logit attribution recorder: what each part of the model writes into the residual stream at the attributed
positions, projected onto the target's unembedding direction through the final norm.

Every supported family is a pre-norm residual stack: h_0 = embed(x); per decoder layer l,
    h = h + mixer_l(norm(h))      (gated attention or DeltaNet: `mixer`)
    h = h + mlp_l(norm(h))        (the MoE block: shared expert (gated) + sum_e w_e expert_e; or a dense MLP)
and logits = lm_head(final_norm(h_L)) with an RMSNorm final_norm(h) = h * s * g, s = 1 / sqrt(mean(h^2) + eps).
Holding s at its value at the position (the usual linearisation, which makes the split exact), the logit of target t
(minus foil f) is sum_c s * (c . (g * u)), u = W_U[t] (- W_U[f]), over the components c: h_0 and every layer's
mixer and MLP writes, which sum to h_L. Hooks, all returning None (the output is untouched):
  - input embedding output: h_0;
  - each decoder layer: input h_in (pre-hook) and output h_out; the MLP block's input and output; the mixer's write is
    h_out - h_in - mlp_out (one definition for every family);
  - per head, where the mixer has an output projection `o_proj` / `out_proj` whose input is heads x head_dim: that
    input (output gate applied), split by head through the projection's weight columns; `mixer_rest` = the write
    minus its heads (a bias, ~0 without);
  - MoE layers: the router's (weights, ids), the shared expert's output and gate; each chosen expert's own output is
    recomputed at the attributed positions (capture/saliency/recorder.expert_outputs); `moe_rest` = the MLP write
    minus shared and routed (~0);
  - the final norm's input h_L and the lm_head's output (the model's own logit, what the components must sum to).
Only the first forward after begin_sequence is attributed (a generation's decode steps are not).
"""

from __future__ import annotations

import numpy as np
import torch

from ...adapters import FULL_ATTENTION, LINEAR_ATTENTION
from ..recorder import CaptureError, SequenceInfo, removed_on_error
from ..saliency.recorder import expert_outputs
from .record import AttributionCapture
from .settings import AttributionSettings
from .tables import attribution_table


def rms_gain(norm: torch.nn.Module, hidden_size: int) -> tuple[torch.Tensor, float]:
    """(g [H] fp32, eps) of an RMSNorm y = h * g / sqrt(mean(h^2) + eps), read by normalising a constant vector (so the
    `w` and `1 + w` conventions need no case): norm(1) = g / sqrt(1 + eps)."""
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    if eps is None:
        raise CaptureError(f"attribution needs an RMSNorm final norm with an eps; {type(norm).__name__} has none")
    reference = next(norm.parameters())
    with torch.no_grad():
        ones = torch.ones(1, hidden_size, device=reference.device, dtype=reference.dtype)
        return norm(ones).float()[0] * float(np.sqrt(1 + eps)), float(eps)


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _hidden_argument(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def _head_split(mixer: torch.nn.Module) -> tuple[torch.nn.Module, int] | None:
    """The mixer's output projection and its head count, where its input is heads x head_dim, else None."""
    proj = next((getattr(mixer, name) for name in ("o_proj", "out_proj") if isinstance(getattr(mixer, name, None),
                                                                                        torch.nn.Linear)), None)
    head_dim = getattr(mixer, "head_v_dim", None) or getattr(mixer, "v_head_dim", None) or getattr(mixer, "head_dim", None)
    if proj is None or not head_dim or proj.in_features % head_dim:
        return None
    return proj, proj.in_features // head_dim


class AttributionRecorder:
    kind = "attribution"

    def __init__(self, settings: AttributionSettings):
        self.settings = settings
        self.positions: list[int] = []
        self.targets: list[int] = []
        self._saved: dict = {}
        self._active = False

    # --- attach ---------------------------------------------------------------------------------------------------
    def attach(self, model: torch.nn.Module, adapter) -> list:
        decoder = model.get_decoder()
        self.model, self.adapter = model, adapter
        self.hidden_size = adapter.text_config(model.config).hidden_size
        self.gain, self.eps = rms_gain(decoder.norm, self.hidden_size)
        self.unembed = model.get_output_embeddings().weight  # [V, H]
        layers = adapter.decoder_layers(model)
        kinds = adapter.layer_kinds(model.config)
        self.mixers = {**adapter.layers_of_kind(model, FULL_ATTENTION), **adapter.layers_of_kind(model, LINEAR_ATTENTION)}
        self.layer_kinds = kinds
        routers = adapter.routers(model)
        self.experts = adapter.experts_modules(model)
        shared = adapter.shared_experts(model) if adapter.router is not None else {}
        gates = adapter.shared_expert_gates(model) if adapter.router is not None else {}
        handles = []
        with removed_on_error(handles):
            handles.append(model.get_input_embeddings().register_forward_hook(self._save("embedding")))
            for index, layer in enumerate(layers):
                mlp = getattr(layer, "mlp", None)
                if mlp is None:
                    raise CaptureError(f"{adapter.name}: attribution reads each decoder layer's `mlp` block; layer "
                                       f"{index} ({type(layer).__name__}) has none")
                handles.append(layer.register_forward_pre_hook(self._save_input(("in", index)), with_kwargs=True))
                handles.append(layer.register_forward_hook(self._save(("out", index))))
                handles.append(mlp.register_forward_pre_hook(self._save_input(("mlp_in", index)), with_kwargs=True))
                handles.append(mlp.register_forward_hook(self._save(("mlp_out", index))))
                split = _head_split(self.mixers[index]) if index in self.mixers else None
                if split is not None:
                    handles.append(split[0].register_forward_pre_hook(self._save_input(("heads", index)),
                                                                      with_kwargs=True))
            for index, router in routers.items():
                handles.append(router.register_forward_hook(self._save_router(index)))
            for index, module in shared.items():
                handles.append(module.register_forward_hook(self._save(("shared", index))))
            for index, gate in gates.items():
                handles.append(gate.register_forward_hook(self._save(("gate", index))))
            handles.append(decoder.norm.register_forward_pre_hook(self._save_input("final_in"), with_kwargs=True))
            handles.append(model.get_output_embeddings().register_forward_hook(self._save("logits")))
        return handles

    # --- what the next forward reads ------------------------------------------------------------------------------
    def begin_sequence(self, sequence: SequenceInfo) -> None:
        """The positions to attribute and their targets: the last position and the target id, or the span's tokens
        (teacher forced: position p predicts the span's token p + 1)."""
        self._saved, self._active = {}, True
        if self.settings.attribution_target_id >= 0:
            self.positions, self.targets = [sequence.num_tokens - 1], [self.settings.attribution_target_id]
            return
        span = next((s for s in sequence.spans if s.name == self.settings.attribution_span), None)
        ids = sequence.token_ids
        if span is None or ids is None:
            self.positions, self.targets = [], []
            return
        targets = range(max(span.start_token, 1), span.end_token)
        self.positions = [t - 1 for t in targets]
        self.targets = [int(ids[t]) for t in targets]

    def batchable(self, sequence: SequenceInfo) -> bool:
        return False  # one prompt per forward: positions and targets are the sequence's own

    # --- hooks ----------------------------------------------------------------------------------------------------
    def _keep(self, key, tensor: torch.Tensor) -> None:
        """Keep the attributed positions' rows of a [1, T, ...] tensor, or of a [T, ...] one (the MoE block's
        flattened tokens), from the first forward that has them."""
        flat = tensor.dim() == 2
        tokens = tensor.shape[0] if flat else tensor.shape[1]
        if self._active and self.positions and key not in self._saved and tokens > max(self.positions):
            rows = tensor.detach()[self.positions] if flat else tensor.detach()[0, self.positions]
            self._saved[key] = rows.float()  # [P, ...]

    def _save(self, key):
        def hook(module, args, output):
            self._keep(key, _first(output))
        return hook

    def _save_input(self, key):
        def hook(module, args, kwargs):
            self._keep(key, _hidden_argument(args, kwargs))
        return hook

    def _save_router(self, index: int):
        def hook(module, args, output):
            weights, ids = output[1], output[2]  # [N, k] each, N = B x T (batch 1)
            if self._active and self.positions and ("ids", index) not in self._saved and \
                    weights.shape[0] > max(self.positions):
                self._saved[("weights", index)] = weights.detach()[self.positions].float()
                self._saved[("ids", index)] = ids.detach()[self.positions]
        return hook

    # --- collect --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def collect(self) -> AttributionCapture | None:
        saved, self._saved, self._active = self._saved, {}, False
        if not self.positions or "final_in" not in saved:
            return None
        device = saved["final_in"].device
        targets = torch.tensor(self.targets, device=device)
        foil = self.settings.attribution_foil_id
        direction = self.unembed[targets].float()  # [P, H]
        model_logit = saved["logits"].gather(-1, targets[:, None]).squeeze(-1)
        if foil >= 0:
            direction = direction - self.unembed[foil].float()
            model_logit = model_logit - saved["logits"][:, foil]
        h_final = saved["final_in"]
        scale = torch.rsqrt(h_final.pow(2).mean(-1) + self.eps)  # [P]: s held fixed at the actual residual
        read = direction * self.gain  # [P, H]: c -> s * (c . read)

        def value(write: torch.Tensor) -> np.ndarray:  # write [P, H] -> [P]
            return (scale * (write * read).sum(-1)).double().cpu().numpy()

        record = AttributionCapture(np.asarray(self.positions), np.asarray(self.targets),
                                    None if foil < 0 else np.full(len(self.positions), foil),
                                    model_logit.double().cpu().numpy())
        record.add(-1, "embedding", value(saved["embedding"]))
        for index in range(len(self.layer_kinds)):
            mlp_write = saved[("mlp_out", index)]
            mixer_write = saved[("out", index)] - saved[("in", index)] - mlp_write
            self._mixer_rows(record, index, mixer_write, value, read, scale, saved)
            self._mlp_rows(record, index, mlp_write, value, saved)
        return record

    def _mixer_rows(self, record, index, write, value, read, scale, saved) -> None:
        kind = "attention" if self.layer_kinds[index] == FULL_ATTENTION else "deltanet"
        split = _head_split(self.mixers[index]) if index in self.mixers else None
        if split is None or ("heads", index) not in saved:
            record.add(index, "mixer", value(write))
            return
        proj, heads = split
        x = saved[("heads", index)].view(len(record.positions), heads, -1)  # [P, heads, D]
        through = (read @ proj.weight.float()).view(len(record.positions), heads, -1)  # [P, heads, D]: W_o^T read
        per_head = scale[:, None] * (x * through).sum(-1)  # [P, heads]
        for head in range(heads):
            record.add(index, f"{kind}_head", per_head[:, head].double().cpu().numpy(), head=head)
        record.add(index, "mixer_rest", value(write) - per_head.sum(-1).double().cpu().numpy())

    def _mlp_rows(self, record, index, write, value, saved) -> None:
        if ("ids", index) not in saved:
            record.add(index, "mlp", value(write))
            return
        ids, weights = saved[("ids", index)], saved[("weights", index)]  # [P, k]
        total = value(write)
        parts = np.zeros_like(total)
        if ("shared", index) in saved:
            shared = saved[("shared", index)]
            if ("gate", index) in saved:
                shared = torch.sigmoid(saved[("gate", index)]) * shared
            shared_value = value(shared)
            record.add(index, "shared_expert", shared_value)
            parts += shared_value
        outputs = expert_outputs(self.experts[index], saved[("mlp_in", index)].to(self.unembed.dtype), ids,
                                 "grouped").float()  # [P, k, H]
        contributions = np.stack([value(weights[:, j, None] * outputs[:, j]) for j in range(ids.shape[1])], 1)
        ids_host, weights_host = ids.cpu().numpy(), weights.double().cpu().numpy()
        for expert in np.unique(ids_host):
            chosen = ids_host == expert  # [P, k]
            record.add(index, "expert", (contributions * chosen).sum(1), expert=int(expert),
                       weights=np.where(chosen.any(1), (weights_host * chosen).sum(1), np.nan))
        parts += contributions.sum(1)
        record.add(index, "moe_rest", total - parts)

    def tables(self, record: AttributionCapture, sequence: SequenceInfo) -> dict:
        return {"logit_attribution": attribution_table(sequence.seq_id, record)}
