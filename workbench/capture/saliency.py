"""Expert saliency recorder: per MoE layer and routed expert, over the tokens routed to it, how often it is chosen,
its mean gate weight, the mean norm of its output and the REAP score (mean of gate weight x ||expert output||); per
layer the shared expert's share of the MoE output. Forward hooks that return None: the output is untouched.

What the hooks see, in the MoE block's execution order (Qwen3-Next, Qwen3.5-MoE):
  shared_expert      output s [N, H] (before its gate)
  experts            inputs hidden [N, H], topk_ids [N, k], topk_weights [N, k]; output r [N, H] = sum_j w_j e_j(x)
  shared_expert_gate output logit [N, 1]; the block adds c = sigmoid(logit) * s to r
The experts module returns only the weighted sum, so each chosen expert's own output e_j(x) [N, k, H] is recomputed
from the hook's inputs:
  path "grouped": one call of the experts module's own forward (grouped_mm by default, whatever implementation
                  the model runs) on the N*k (token, expert) rows with k = 1 and weight 1: every expert runs once
                  more on exactly its routed tokens, batched.
  path "loop":    the experts class's eager forward (a Python loop over the experts hit), on the same rows: the
                  simple way, the speed of set_experts_implementation("eager") but only for this recompute.
Both paths leave the model's own forward as it is. Sums stay on the model's device until `collect`.
"""

from __future__ import annotations

import torch

from ..trace.saliency_tables import saliency_tables
from .records import ExpertSaliencyCapture
from .recorder import CaptureError, SequenceInfo, recorder_kind, remove_all
from .transfer import to_host

SALIENCY_PATHS = ("grouped", "loop")
ROWS_PER_RECOMPUTE = 1 << 16  # (token, expert) rows per recompute call: bounds the [rows, H] temporary


def expert_outputs(experts: torch.nn.Module, hidden: torch.Tensor, topk_ids: torch.Tensor, path: str) -> torch.Tensor:
    """Each chosen expert's unweighted output: hidden [N, H], topk_ids [N, k] -> [N, k, H] in hidden's dtype."""
    n, k = topk_ids.shape
    forward = experts.forward
    if path == "loop":
        forward = getattr(type(experts).forward, "__wrapped__", type(experts).forward).__get__(experts)
    rows_hidden = hidden.repeat_interleave(k, dim=0)  # [N*k, H]: row n*k + j is token n
    rows_ids = topk_ids.reshape(-1, 1)  # [N*k, 1]
    ones = torch.ones_like(rows_ids, dtype=hidden.dtype)
    parts = [forward(rows_hidden[i:i + ROWS_PER_RECOMPUTE], rows_ids[i:i + ROWS_PER_RECOMPUTE],
                     ones[i:i + ROWS_PER_RECOMPUTE]) for i in range(0, n * k, ROWS_PER_RECOMPUTE)]
    return torch.cat(parts).view(n, k, -1)


@recorder_kind
class ExpertSaliencyRecorder:
    """Per-layer device sums of one or more forward calls (see module docstring)."""

    kind = "expert_saliency"

    def __init__(self, path: str = "grouped"):
        if path not in SALIENCY_PATHS:
            raise ValueError(f"expert saliency path must be one of {SALIENCY_PATHS}, got {path!r}")
        self.path = path
        self._sums: dict[int, dict[str, torch.Tensor]] = {}
        self._pending: dict[int, dict[str, torch.Tensor]] = {}

    @staticmethod
    def enabled(settings) -> bool:
        return settings.expert_saliency

    @classmethod
    def from_settings(cls, settings) -> "ExpertSaliencyRecorder":
        return cls(path=settings.expert_saliency_path)

    def attach(self, model: torch.nn.Module, adapter) -> list:
        experts = adapter.experts_modules(model)
        if not experts:
            raise CaptureError(f"{adapter.name}: expert saliency needs routed experts at "
                               f"'{adapter.layers}.*.{adapter.router.experts if adapter.router else 'mlp.experts'}'")
        handles = []
        try:
            for index, module in experts.items():
                handles.append(module.register_forward_hook(self.experts_hook(index), with_kwargs=True))
            shared, gates = adapter.shared_experts(model), adapter.shared_expert_gates(model)
            for index in set(shared) & set(gates):
                handles.append(shared[index].register_forward_hook(self.pending_hook(index, "shared")))
                handles.append(gates[index].register_forward_hook(self.pending_hook(index, "gate_logit")))
        except BaseException:
            remove_all(handles)
            raise
        return handles

    def begin_sequence(self, sequence: SequenceInfo) -> None:
        pass

    def _add(self, layer: int, name: str, value: torch.Tensor) -> None:
        sums = self._sums.setdefault(layer, {})
        sums[name] = sums[name] + value if name in sums else value

    def experts_hook(self, layer: int):
        @torch.no_grad()
        def hook(module, args, kwargs, output):
            names = ("hidden_states", "top_k_index", "top_k_weights")
            hidden, topk_ids, topk_weights = (*args, *(kwargs[n] for n in names[len(args):]))
            hidden, topk_ids = hidden.detach(), topk_ids.detach()
            weights = topk_weights.detach().float()  # [N, k]
            norms = expert_outputs(module, hidden, topk_ids, self.path).float().norm(dim=-1)  # [N, k]
            ids, num_experts = topk_ids.reshape(-1).long(), module.num_experts
            self._add(layer, "count", torch.bincount(ids, minlength=num_experts))
            self._add(layer, "gate_sum", torch.bincount(ids, weights.reshape(-1).double(), minlength=num_experts))
            self._add(layer, "norm_sum", torch.bincount(ids, norms.reshape(-1).double(), minlength=num_experts))
            self._add(layer, "reap_sum",
                      torch.bincount(ids, (weights * norms).reshape(-1).double(), minlength=num_experts))
            self._pending.setdefault(layer, {})["routed"] = output.detach()
            self._shared_share(layer)

        return hook

    def pending_hook(self, layer: int, name: str):
        def hook(module, args, output):
            self._pending.setdefault(layer, {})[name] = output.detach()
            self._shared_share(layer)

        return hook

    @torch.no_grad()
    def _shared_share(self, layer: int) -> None:
        """Once a layer's shared output, gate logit and routed sum are all seen: per token, the shared expert's share
        ||c|| / (||c|| + ||r||) of the MoE output's two parts, c = sigmoid(gate) * s (0..1)."""
        pending = self._pending.get(layer, {})
        if len(pending) < 3:
            return
        shared = (torch.sigmoid(pending["gate_logit"].float()) * pending["shared"].float()).norm(dim=-1)  # [N]
        routed = pending["routed"].float().norm(dim=-1)  # [N]
        share = shared / (shared + routed).clamp_min(torch.finfo(torch.float32).tiny)
        self._add(layer, "shared_tokens", torch.tensor(share.numel(), device=share.device))
        self._add(layer, "share_sum", share.double().sum())
        self._add(layer, "shared_norm_sum", shared.double().sum())
        self._add(layer, "routed_norm_sum", routed.double().sum())
        self._pending.pop(layer)

    def collect(self) -> ExpertSaliencyCapture | None:
        """Sums since the last collect, on the CPU, then cleared; None when nothing was recorded."""
        if not self._sums:
            return None
        layers = sorted(self._sums)
        host = to_host({f"{name}.{layer}": value for layer in layers for name, value in self._sums[layer].items()})
        record = ExpertSaliencyCapture(
            layers=layers,
            count=torch.stack([host[f"count.{layer}"] for layer in layers]),
            gate_sum=torch.stack([host[f"gate_sum.{layer}"] for layer in layers]),
            norm_sum=torch.stack([host[f"norm_sum.{layer}"] for layer in layers]),
            reap_sum=torch.stack([host[f"reap_sum.{layer}"] for layer in layers]),
            shared_tokens=torch.stack([host.get(f"shared_tokens.{layer}", torch.tensor(0)) for layer in layers]),
            share_sum=torch.stack([host.get(f"share_sum.{layer}", torch.tensor(0.0, dtype=torch.float64))
                                   for layer in layers]),
            shared_norm_sum=torch.stack([host.get(f"shared_norm_sum.{layer}", torch.tensor(0.0, dtype=torch.float64))
                                         for layer in layers]),
            routed_norm_sum=torch.stack([host.get(f"routed_norm_sum.{layer}", torch.tensor(0.0, dtype=torch.float64))
                                         for layer in layers]),
            path=self.path,
        )
        self._sums.clear()
        self._pending.clear()
        return record

    def tables(self, record: ExpertSaliencyCapture, sequence: SequenceInfo) -> dict:
        return saliency_tables(sequence.seq_id, record)
