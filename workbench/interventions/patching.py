"""Activation patching: run a corrupted prompt with one site's activation taken from a clean prompt of the same length.
An INTERVENTION: the patched forward's output changes; every hook and kernel patch is removed on exit and on error.

Sites (`Site(kind, layer, index)`), patched at a range of positions [start, stop):
  residual  the decoder layer's output h (the whole residual stream after the layer);
  mixer     the token mixer's write (attention or DeltaNet block output, before the residual add);
  head      one head's slice of the mixer's output-projection input (index = head; output gate applied);
  expert    one routed expert's weighted write w_e e(x) in the MoE block (index = expert id): the corrupted run's write
            of that expert is replaced by the clean run's (0 where the expert was not chosen);
  state     the DeltaNet recurrent state of the layer after token `start` (stop = start + 1): the corrupted prompt runs
            to `start` through the model's cache, the layer's state is replaced by the clean run's state there, and
            the rest of the prompt continues from it (the conv window stays the corrupted run's).
Metric: the logit difference LD = logit(answer) - logit(foil) at the last position; normalised recovery
(LD_patched - LD_corrupted) / (LD_clean - LD_corrupted): 0 = the patch changed nothing, 1 = the clean answer fully back.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..adapters import LINEAR_ATTENTION
from ..adapters.upstream import cache_keyword, kernel_signature, output_cache
from ..capture.attribution.recorder import _head_split
from ..capture.recorder import KernelPatch, remove_all

SITE_KINDS = ("residual", "mixer", "head", "expert", "state")


class PatchingError(ValueError):
    """The patch cannot be applied (unequal prompt lengths, a site the model does not have)."""


@dataclass(frozen=True)
class Site:
    kind: str
    layer: int
    index: int = -1  # head (kind "head") or expert id (kind "expert")

    def __post_init__(self):
        if self.kind not in SITE_KINDS:
            raise PatchingError(f"site kind must be one of {', '.join(SITE_KINDS)}, got {self.kind!r}")
        if self.kind in ("head", "expert") and self.index < 0:
            raise PatchingError(f"a {self.kind} site needs its {self.kind} index")


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _replace_first(output, new):
    return (new, *output[1:]) if isinstance(output, tuple) else new


class Model:
    """The modules patching touches, found through the adapter."""

    def __init__(self, model: torch.nn.Module, adapter):
        self.model, self.adapter = model, adapter
        self.layers = adapter.decoder_layers(model)
        self.kinds = adapter.layer_kinds(model.config)
        self.mixers = {**adapter.layers_of_kind(model, "full_attention"), **adapter.layers_of_kind(model, LINEAR_ATTENTION)}
        self.experts = adapter.experts_modules(model)

    def check(self, site: Site) -> None:
        if not 0 <= site.layer < len(self.layers):
            raise PatchingError(f"layer {site.layer} is not a decoder layer (0..{len(self.layers) - 1})")
        if site.kind in ("mixer", "head") and site.layer not in self.mixers:
            raise PatchingError(f"layer {site.layer} has no attention or DeltaNet block the adapter names")
        if site.kind == "head":
            split = _head_split(self.mixers[site.layer])
            if split is None or site.index >= split[1]:
                raise PatchingError(f"layer {site.layer} has no head {site.index} to patch")
        if site.kind == "expert" and site.layer not in self.experts:
            raise PatchingError(f"layer {site.layer} is not an MoE layer")
        if site.kind == "state" and self.kinds[site.layer] != LINEAR_ATTENTION:
            raise PatchingError(f"layer {site.layer} is not a DeltaNet layer: it has no recurrent state")


def _expert_write(module, args, kwargs, expert: int) -> torch.Tensor:
    """The experts module's call (hidden [N, H], topk_ids [N, k], topk_weights [N, k]) -> expert `expert`'s weighted
    write [N, H] (0 on tokens that did not choose it), recomputed with the module's own forward on its chosen rows."""
    names = ("hidden_states", "top_k_index", "top_k_weights")
    hidden, ids, weights = (*args, *(kwargs[n] for n in names[len(args):]))
    chosen = ids == expert  # [N, k]
    write = torch.zeros_like(hidden)
    rows = chosen.any(-1).nonzero().squeeze(-1)
    if len(rows):
        weight = (weights * chosen).sum(-1, keepdim=True)[rows]  # [n, 1]
        one = torch.full((len(rows), 1), expert, dtype=ids.dtype, device=ids.device)
        write[rows] = module.forward(hidden[rows], one, weight.to(hidden.dtype))  # forward: not our hook again
    return write


def _hooks(model: Model, site: Site, on_value):
    """Register the hook that reads (on_value(tensor) -> None) or replaces (on_value returns the new tensor) the site's
    activation [1, T, ...] (experts: [T, H]). Returns its handles."""
    if site.kind == "residual":
        def hook(module, args, output):
            new = on_value(_first(output))
            return None if new is None else _replace_first(output, new)
        return [model.layers[site.layer].register_forward_hook(hook)]
    if site.kind == "mixer":
        def hook(module, args, output):
            new = on_value(_first(output))
            return None if new is None else _replace_first(output, new)
        return [model.mixers[site.layer].register_forward_hook(hook)]
    if site.kind == "head":
        proj, heads = _head_split(model.mixers[site.layer])
        width = proj.in_features // heads

        def pre(module, args):
            x = args[0]
            part = slice(site.index * width, (site.index + 1) * width)
            new = on_value(x[..., part])
            if new is None:
                return None
            x = x.clone()
            x[..., part] = new
            return (x, *args[1:])
        return [proj.register_forward_pre_hook(pre)]
    if site.kind == "expert":
        def hook(module, args, kwargs, output):
            write = _expert_write(module, args, kwargs, site.index)
            new = on_value(write)
            return None if new is None else output - write + new
        return [model.experts[site.layer].register_forward_hook(hook, with_kwargs=True)]
    raise PatchingError(f"{site.kind} sites are patched by state_patched_logits")


def record_clean(model: Model, ids: torch.Tensor, sites: list[Site]) -> tuple[torch.Tensor, dict[Site, torch.Tensor]]:
    """One clean forward: its last-position logits [V] and every (non-state) site's activation."""
    values: dict[Site, torch.Tensor] = {}
    handles = []
    try:
        for site in sites:
            if site.kind != "state":
                model.check(site)

                def keep(value, site=site):
                    values.setdefault(site, value.detach().clone())  # the first call's (the whole prompt)

                handles += _hooks(model, site, keep)
        with torch.no_grad():
            logits = model.model(input_ids=ids, use_cache=False).logits[0, -1]
    finally:
        remove_all(handles)
    return logits, values


@contextmanager
def patched(model: Model, site: Site, clean_value: torch.Tensor, positions: slice):
    """Within the block, forwards take the site's activation at `positions` from `clean_value` (the same site's
    activation in a clean run of the same length). Restores the model on exit and on error."""
    model.check(site)

    def replace(value):
        if value.shape != clean_value.shape:
            raise PatchingError(f"the clean and corrupted prompts must have the same length: activation "
                                f"{tuple(clean_value.shape)} vs {tuple(value.shape)}")
        new = value.clone()
        if value.dim() == 2:  # the experts module's flattened tokens (batch 1)
            new[positions] = clean_value[positions]
        else:
            new[:, positions] = clean_value[:, positions]
        return new

    handles = _hooks(model, site, replace)
    try:
        yield
    finally:
        remove_all(handles)


@contextmanager
def _linear_kernels(model: Model, on_call):
    """Wrap the DeltaNet chunk kernel global of every linear-attention block: on_call(layer, arguments) may return a
    replacement initial_state; after the call, on_call sees the result via on_call(layer, None, result)."""
    site = model.adapter.linear_attention
    current = {"layer": None}
    blocks = {i: m for i, m in model.mixers.items() if model.kinds[i] == LINEAR_ATTENTION}
    files = {type(m).__module__: sys.modules[type(m).__module__] for m in blocks.values()}
    handles = []
    try:
        for index, block in blocks.items():
            handles.append(block.register_forward_pre_hook(lambda m, a, index=index: current.update(layer=index)))
        for file in files.values():
            for name, _ in site.kernels():
                signature = kernel_signature(model.adapter.name, file, name, site.arguments.required())

                def make(original, signature=signature):
                    def kernel(*args, **kwargs):
                        bound = signature.bind(*args, **kwargs)
                        new = on_call(current["layer"], bound.arguments)
                        if new is not None:
                            bound.arguments[site.arguments.initial_state] = new
                            args, kwargs = bound.args, bound.kwargs
                        result = original(*args, **kwargs)
                        on_call(current["layer"], None, result)
                        return result
                    kernel.__wrapped__ = original
                    return kernel
                handles.append(KernelPatch(file, name, make))
        yield
    finally:
        remove_all(handles)


def clean_states(model: Model, ids: torch.Tensor, position: int) -> dict[int, torch.Tensor]:
    """Every DeltaNet layer's recurrent state after token `position` of a run of `ids` (its prefix through the cache)."""
    states: dict[int, torch.Tensor] = {}

    def on_call(layer, arguments, result=None):
        if arguments is None and result is not None and isinstance(result, tuple) and result[1] is not None:
            states[layer] = result[1].detach().clone()
        return None

    with _linear_kernels(model, on_call), torch.no_grad():
        model.model(input_ids=ids[:, : position + 1], use_cache=True)
    return states


def state_patched_logits(model: Model, ids: torch.Tensor, layer: int, position: int,
                         clean_state: torch.Tensor) -> torch.Tensor:
    """Last-position logits [V] of `ids` with DeltaNet layer `layer`'s state after token `position` replaced by
    `clean_state`: the prefix runs through the cache, the rest continues from the replaced state."""
    model.check(Site("state", layer))
    if not 0 <= position < ids.shape[1] - 1:
        raise PatchingError(f"a state patch needs tokens after it: position must be in [0, {ids.shape[1] - 2}]")
    with torch.no_grad():
        out = model.model(input_ids=ids[:, : position + 1], use_cache=True)
        cache = output_cache(out)
        armed = {"done": False}

        def on_call(current, arguments, result=None):
            if arguments is not None and current == layer and not armed["done"]:
                armed["done"] = True
                state = arguments[model.adapter.linear_attention.arguments.initial_state]
                return clean_state.to(dtype=state.dtype, device=state.device)
            return None

        with _linear_kernels(model, on_call):
            rest = model.model(input_ids=ids[:, position + 1:], use_cache=True,
                               **{cache_keyword(model.model.forward): cache})
    return rest.logits[0, -1]


def logit_difference(logits: torch.Tensor, answer: int, foil: int) -> float:
    return float(logits[answer].double() - logits[foil].double())


def recovery(patched: float, clean: float, corrupted: float) -> float:
    """(LD_patched - LD_corrupted) / (LD_clean - LD_corrupted); NaN when clean and corrupted do not differ."""
    gap = clean - corrupted
    return float("nan") if gap == 0 else (patched - corrupted) / gap


__all__ = ["SITE_KINDS", "Model", "PatchingError", "Site", "clean_states", "logit_difference", "patched",
           "record_clean", "recovery", "state_patched_logits"]


def patching_sweep(model: torch.nn.Module, adapter, clean_ids: torch.Tensor, corrupt_ids: torch.Tensor, answer: int,
                   foil: int, sites: list[Site], ranges: list[tuple[int, int]]) -> tuple[list[dict], dict]:
    """Patch every site over every position range [start, stop) (state sites: after token stop - 1) and measure the
    logit difference at the last position. Returns (rows, forwards): rows with site kind, layer, index, start, stop,
    logit_diff and recovery; forwards counts what ran: 1 clean + 1 corrupted + one patched forward of the corrupted
    prompt per (site, range) (a state patch runs it as prefix + rest through the cache), plus one clean prefix per
    distinct state position."""
    if clean_ids.shape != corrupt_ids.shape or clean_ids.shape[0] != 1:
        raise PatchingError(f"clean and corrupted prompts must be one row each of the same length, got "
                            f"{tuple(clean_ids.shape)} and {tuple(corrupt_ids.shape)}")
    wrapped = Model(model, adapter)
    for site in sites:
        wrapped.check(site)
    clean_logits, values = record_clean(wrapped, clean_ids, sites)
    with torch.no_grad():
        corrupt_logits = model(input_ids=corrupt_ids, use_cache=False).logits[0, -1]
    clean_ld, corrupt_ld = logit_difference(clean_logits, answer, foil), logit_difference(corrupt_logits, answer, foil)
    forwards = {"clean": 1, "corrupted": 1, "patched": 0, "clean_prefixes": 0}
    states: dict[int, dict[int, torch.Tensor]] = {}
    rows = []
    for site in sites:
        for start, stop in ranges:
            if site.kind == "state":
                position = stop - 1
                if position >= clean_ids.shape[1] - 1:
                    continue  # nothing follows the last token's state
                if position not in states:
                    states[position] = clean_states(wrapped, clean_ids, position)
                    forwards["clean_prefixes"] += 1
                logits = state_patched_logits(wrapped, corrupt_ids, site.layer, position, states[position][site.layer])
            else:
                with patched(wrapped, site, values[site], slice(start, stop)), torch.no_grad():
                    logits = model(input_ids=corrupt_ids, use_cache=False).logits[0, -1]
            forwards["patched"] += 1
            ld = logit_difference(logits, answer, foil)
            rows.append({"site": site.kind, "layer": site.layer, "index": site.index, "position_start": start,
                         "position_end": stop, "logit_diff": ld, "recovery": recovery(ld, clean_ld, corrupt_ld),
                         "clean_logit_diff": clean_ld, "corrupted_logit_diff": corrupt_ld})
    return rows, forwards
