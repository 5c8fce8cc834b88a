"""Expert saliency recorder: per MoE layer and routed expert, over the tokens routed to it, how often it is chosen,
its mean gate weight, the mean norm of its output and the REAP score (mean of gate weight x ||expert output||); per
layer the shared expert's share of the MoE output. Forward hooks that return None and a kernel wrapper that returns
the kernel's own result: the output is untouched.

What the hooks see, in the MoE block's execution order (Qwen3-Next, Qwen3.5-MoE):
  shared_expert      output s [N, H] (before its gate)
  experts            inputs hidden [N, H], topk_ids [N, k], topk_weights [N, k]; output r [N, H] = sum_j w_j e_j(x)
  shared_expert_gate output logit [N, 1]; the block adds c = sigmoid(logit) * s to r
The experts module returns only the weighted sum; each chosen expert's own output e_j(x) comes from one of:
  path "tap":     read inside the model's own grouped_mm forward (expert_tap.py): its down projection
                  returns every routed row's unweighted output [N*k, H], rows sorted by expert id with
                  `torch.sort(topk_ids.reshape(-1))`; a wrapper keeps the row norms. The hook runs that same sort
                  on the same topk_ids tensor: torch.sort is a deterministic function of its input on a device (no
                  atomics, no randomness: ties among one expert's rows come out in the same order each time), so its
                  permutation is the model's and topk_weights[perm] pairs each norm with its own gate weight (the
                  tests check REAP per expert against a hand-run reference, which a wrong pairing fails). No expert
                  runs twice.
  path "grouped": recomputed by one call of the experts module's own forward (grouped_mm by default, whatever
                  implementation the model runs) on the N*k (token, expert) rows with k = 1 and weight 1: every
                  expert runs once more on exactly its routed tokens, batched.
  path "loop":    recomputed by the experts class's eager forward (a Python loop over the experts hit), on the same
                  rows: the simple way, the speed of set_experts_implementation("eager") but only for this recompute.
  path "auto":    per layer "tap" where it is exact (`expert_tap.tap_unavailable`: the module runs transformers'
                  grouped_mm, no post-expert norm, not expert-parallel), else "grouped"; a forward the tap did not
                  see (the implementation changed after attach) falls back to "grouped" for that call. An explicit
                  "tap" raises instead. The record's `path` joins the paths that ran with "+".
No path changes the model's forward. Sums stay on the model's device until `collect`.
"""

from __future__ import annotations

import torch

from ..recorder import CaptureError, SequenceInfo, removed_on_error
from ..transfer import to_host
from .expert_tap import DownProjTap, tap_unavailable
from .record import ExpertSaliencyCapture
from .settings import SALIENCY_PATHS
from .tables import saliency_tables
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


class ExpertSaliencyRecorder:
    """Per-layer device sums of one or more forward calls (see module docstring)."""

    kind = "expert_saliency"

    def __init__(self, path: str = "auto"):
        if path not in SALIENCY_PATHS:
            raise ValueError(f"expert saliency path must be one of {SALIENCY_PATHS}, got {path!r}")
        self.path = path
        self.layer_paths: dict[int, str] = {}  # MoE layer -> "tap", "grouped" or "loop" (set by attach)
        self._tap = DownProjTap()
        self._ran: set[str] = set()  # paths that ran since the last collect
        self._sums: dict[int, dict[str, torch.Tensor]] = {}
        self._pending: dict[int, dict[str, torch.Tensor]] = {}

    def resolve(self, layer: int, experts: torch.nn.Module) -> str:
        """The path one MoE layer runs: "auto" -> "tap" where exact, else "grouped"; "tap" raises where not exact."""
        if self.path in ("grouped", "loop"):
            return self.path
        reason = tap_unavailable(experts)
        if reason is not None and self.path == "tap":
            raise CaptureError(f"expert_saliency_path='tap' reads the expert outputs inside transformers' grouped_mm "
                               f"forward, but layer {layer}'s experts {reason}; use 'auto' or 'grouped'")
        return "grouped" if reason is not None else "tap"

    def attach(self, model: torch.nn.Module, adapter) -> list:
        experts = adapter.experts_modules(model)
        if not experts:
            raise CaptureError(f"{adapter.name}: expert saliency needs routed experts at "
                               f"'{adapter.layers}.*.{adapter.router.experts if adapter.router else 'mlp.experts'}'")
        self.layer_paths = {index: self.resolve(index, module) for index, module in experts.items()}
        handles = []
        with removed_on_error(handles):
            if "tap" in self.layer_paths.values():
                handles.append(self._tap.patch())
            for index, module in experts.items():
                if self.layer_paths[index] == "tap":
                    handles.append(module.register_forward_pre_hook(lambda module, args: self._tap.arm(module)))
                handles.append(module.register_forward_hook(self.experts_hook(index), with_kwargs=True))
            shared, gates = adapter.shared_experts(model), adapter.shared_expert_gates(model)
            for index in set(shared) & set(gates):
                handles.append(shared[index].register_forward_hook(self.pending_hook(index, "shared")))
                handles.append(gates[index].register_forward_hook(self.pending_hook(index, "gate_logit")))
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
            ids = topk_ids.detach().reshape(-1)  # [N*k], row n*k + j = token n's j-th choice
            weights = topk_weights.detach().reshape(-1).float()  # [N*k]
            path = self.layer_paths[layer]
            norms = self._tap.take() if path == "tap" else None  # [N*k] in the model's expert-sorted row order
            if path == "tap" and (norms is None or norms.numel() != ids.numel()):
                if self.path == "tap":
                    raise CaptureError(f"expert_saliency_path='tap': layer {layer}'s experts forward did not run "
                                       "transformers' grouped_mm down projection; use 'auto' or 'grouped'")
                path, norms = "grouped", None
            if norms is not None:
                ids, perm = torch.sort(ids)  # the model's own sort of the same tensor: its row order (docstring)
                weights = weights[perm]
            else:
                norms = expert_outputs(module, hidden.detach(), topk_ids.detach(), path).float().norm(dim=-1)
                norms = norms.reshape(-1)  # [N*k] in token order, like ids and weights
            self._ran.add(path)
            self._accumulate(layer, ids.long(), weights, norms, module.num_experts)
            self._pending.setdefault(layer, {})["routed"] = output.detach()
            self._shared_share(layer)

        return hook

    def _accumulate(self, layer: int, ids: torch.Tensor, weights: torch.Tensor, norms: torch.Tensor,
                    num_experts: int) -> None:
        """Per-expert sums of one call's (token, expert) rows: ids, gate weights and output norms [N*k], row-aligned."""
        self._add(layer, "count", torch.bincount(ids, minlength=num_experts))
        self._add(layer, "gate_sum", torch.bincount(ids, weights.double(), minlength=num_experts))
        self._add(layer, "norm_sum", torch.bincount(ids, norms.double(), minlength=num_experts))
        self._add(layer, "reap_sum", torch.bincount(ids, (weights * norms).double(), minlength=num_experts))

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
            path="+".join(sorted(self._ran)),
        )
        self._sums.clear()
        self._ran.clear()
        self._pending.clear()
        return record

    def tables(self, record: ExpertSaliencyCapture, sequence: SequenceInfo) -> dict:
        return saliency_tables(sequence.seq_id, record)
