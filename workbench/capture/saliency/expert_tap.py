"""The expert-saliency "tap": each routed (token, expert) row's expert-output norm, read out of transformers' own
grouped_mm experts forward instead of recomputed.

transformers.integrations.moe.grouped_mm_experts_forward (experts implementation "grouped_mm"), on hidden [N, H],
top_k_index [N, k], top_k_weights [N, k]:
  expert_ids_g, perm = torch.sort(top_k_index.reshape(-1))        # [S], S = N*k rows sorted by expert id
  proj_out = _grouped_linear(hidden[perm // k], gate_up_proj, offsets, ...)   then the gate/activation
  proj_out = _grouped_linear(proj_out, down_proj, offsets, ...)   # [S, H]: row i = expert expert_ids_g[i]'s
                                                                  #   unweighted output on token perm[i] // k
  weighted = proj_out * top_k_weights.reshape(-1)[perm]           # then back to token order and summed over k
`_grouped_linear` is a module global, so a KernelPatch can wrap it: the wrapper returns the original's result
untouched and, when `weight` is the down_proj of the experts module whose forward is running (armed by a forward
pre-hook), keeps the row norms ||proj_out[i]||_2 [S] float32 (no float32 copy of [S, H]).

Exact only where that is the function that runs and proj_out is the expert's output: `tap_unavailable` says why not
(another implementation, a post-expert norm after down_proj, expert parallelism: sentinel rows). A forward the tap
did not see (`take()` gives None) is the caller's to handle.
"""

from __future__ import annotations

import importlib

import torch

from ..recorder import KernelPatch

MOE_MODULE = "transformers.integrations.moe"
GROUPED_LINEAR = "_grouped_linear"  # (input, weight, offs, bias=None, is_transposed=False) -> [S, out]


def tap_unavailable(experts: torch.nn.Module) -> str | None:
    """Why the tap cannot read `experts`' own outputs exactly (a phrase), or None when it can."""
    moe = importlib.import_module(MOE_MODULE)
    missing = [n for n in (GROUPED_LINEAR, "grouped_mm_experts_forward", "ALL_EXPERTS_FUNCTIONS") if not hasattr(moe, n)]
    if missing:
        return f"run a transformers whose {MOE_MODULE} has no {', '.join(missing)}"
    implementation = getattr(getattr(experts, "config", None), "_experts_implementation", None)
    if not hasattr(experts, "has_post_expert_norm"):
        return f"({type(experts).__name__}) are not a transformers use_experts_implementation class"
    if implementation != "grouped_mm":
        return f"run experts implementation {implementation!r}, not 'grouped_mm'"
    if moe.ALL_EXPERTS_FUNCTIONS.get("grouped_mm") is not moe.grouped_mm_experts_forward:
        return "run a 'grouped_mm' registered in place of transformers' grouped_mm_experts_forward"
    if experts.has_post_expert_norm:
        return "normalise each expert's output after down_proj (post_expert_norm)"
    if getattr(experts, "_is_expert_parallel", False):
        return "are expert-parallel (sentinel rows)"
    if not isinstance(getattr(experts, "down_proj", None), torch.Tensor):
        return "have no down_proj tensor"
    return None


class DownProjTap:
    """Row norms of the down projection of the one experts forward that is running (see module docstring).

    tap.patch()    -> a KernelPatch handle over transformers' `_grouped_linear` (remove() restores it)
    tap.arm(experts)  in the experts' forward pre-hook
    tap.take()     -> row norms [S] float32 in the model's expert-sorted row order, or None; disarms
    """

    def __init__(self):
        self.armed: torch.nn.Module | None = None
        self.norms: torch.Tensor | None = None

    def patch(self) -> KernelPatch:
        return KernelPatch(importlib.import_module(MOE_MODULE), GROUPED_LINEAR, self.wrap)

    def wrap(self, original):
        def grouped_linear(*args, **kwargs):
            out = original(*args, **kwargs)
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            armed = self.armed  # looked up at call time: the parameter the forward passes, even if swapped in late
            if armed is not None and weight is armed.down_proj:
                if self.norms is not None:
                    raise RuntimeError(f"{type(armed).__name__}: down_proj went through {GROUPED_LINEAR} twice in "
                                       "one forward; the expert-saliency tap reads one call")
                self.norms = torch.linalg.vector_norm(out.detach(), dim=-1, dtype=torch.float32)  # [S]
            return out

        return grouped_linear

    def arm(self, experts: torch.nn.Module) -> None:
        self.armed, self.norms = experts, None

    def take(self) -> torch.Tensor | None:
        norms, self.armed, self.norms = self.norms, None, None
        return norms
