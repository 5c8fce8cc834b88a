"""What the installed transformers actually has at each capture site, read before any forward.

The workbench observes transformers' private modeling code: module globals of the modeling files (the delta-rule
kernels), the arguments those kernels are called with, and what a router returns. Every release may move them, so
recorders never trust a name fixed in the code: they resolve the site on the installed modeling code, and refuse
with one `SiteError` line (family, site, installed transformers, the tested range) when it is not what they read.
Nothing here runs a model forward.

How a kernel global is resolved (`callable_parameters`): transformers wraps the torch reference kernels in layers
of decorators, and the layers differ by release and by what else is installed:
  - `use_kernel_func_from_hub_with_fallback` returns a function that `functools.wraps` the torch reference
    (`__wrapped__`), so its signature is the reference's;
  - with the `kernels` package installed (a dependency from 5.25 on), `use_kernel_forward_from_hub` turns that
    function into an instance of an `nn.Module` subclass `Func` whose `forward(*args, **kwargs)` calls it: the
    function is a free variable of `Func.forward` (read with `inspect.getclosurevars`).
The resolver follows both until it reaches a signature that names its parameters.
"""

from __future__ import annotations

import functools
import inspect
from importlib import metadata

import torch

# The transformers releases the suite has passed on (pyproject.toml states the same range; a test checks they agree).
TESTED_TRANSFORMERS = (">=5.17", "<5.26")


class SiteError(ValueError):
    """A capture site is not what the recorder reads on this install (one line: family, site, versions)."""


@functools.cache
def transformers_version() -> str:
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:  # a source checkout on sys.path
        import transformers

        return transformers.__version__


def tested_range() -> str:
    return ",".join(TESTED_TRANSFORMERS)


def site_error(family: str, site: str, problem: str) -> SiteError:
    """The one-line refusal: `<family>: <site>: <problem> (transformers X installed; tested on >=A,<B)`."""
    return SiteError(f"{family}: {site}: {problem} (transformers {transformers_version()} installed; the workbench "
                     f"is tested on transformers {tested_range()})")


def _named(signature: inspect.Signature) -> bool:
    """Whether a signature names parameters beyond a bare (*args, **kwargs)."""
    kinds = {p.kind for p in signature.parameters.values()}
    return bool(kinds - {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD})


def _inner_callable(obj):
    """The function a wrapper object calls, or None: `__wrapped__`, or the one callable free variable of a
    module-like object's `forward` (the `kernels` package's Func)."""
    inner = getattr(obj, "__wrapped__", None)
    if inner is not None:
        return inner
    forward = getattr(type(obj), "forward", None) if isinstance(obj, torch.nn.Module) else None
    if forward is None or not inspect.isfunction(forward):
        return None
    free = [v for v in inspect.getclosurevars(forward).nonlocals.values() if callable(v) and not isinstance(v, type)]
    return free[0] if len(free) == 1 else None


def callable_parameters(obj, depth: int = 8) -> inspect.Signature | None:
    """The signature of what calling `obj` finally runs, with its parameters named; None when every layer of
    wrapping hides them (only *args/**kwargs all the way down)."""
    for _ in range(depth):
        try:
            signature = inspect.signature(obj)  # follows __wrapped__ of plain functions
        except (TypeError, ValueError):
            signature = None
        if signature is not None and _named(signature):
            return signature
        obj = _inner_callable(obj)
        if obj is None:
            return None
    return None


def torch_reference(kernel, modeling_file):
    """The plain torch function defined in `modeling_file` that kernel global `kernel` wraps (transformers' reference
    implementation, e.g. `torch_chunk_gated_delta_rule` under its hub/fla dispatch), or None when there is none."""
    obj, seen = kernel, 0
    while obj is not None and seen < 8:
        if inspect.isfunction(obj) and obj is not kernel and obj.__module__ == modeling_file.__name__ \
                and _inner_callable(obj) is None:
            return obj
        obj, seen = _inner_callable(obj), seen + 1
    return None


def kernel_signature(family: str, modeling_file, name: str, required: tuple[str, ...]) -> inspect.Signature:
    """The resolved signature of kernel global `name` of `modeling_file`, checked to take every argument name in
    `required`; a SiteError otherwise (missing global, names hidden by a wrapper, a renamed argument)."""
    site = f"{modeling_file.__name__}.{name}"
    if not hasattr(modeling_file, name):
        raise site_error(family, site, "the kernel global is missing")
    signature = callable_parameters(getattr(modeling_file, name))
    if signature is None:
        raise site_error(family, site, "its wrapper hides the argument names (only *args, **kwargs)")
    missing = [n for n in required if n not in signature.parameters]
    if missing:
        raise site_error(family, site, f"takes no argument {', '.join(map(repr, missing))} "
                                       f"(it takes {', '.join(signature.parameters)})")
    return signature


def check_router_output(family: str, site: str, router: torch.nn.Module, hidden_size: int) -> None:
    """Call one router's forward (not its hooks) on one zero token and check it returns what the routing hook
    reads: (logits [1, E], top-k weights [1, k], top-k ids [1, k] integer). A SiteError otherwise."""
    parameter = next(router.parameters(), None)
    if parameter is None or parameter.device.type == "meta":
        return  # nothing to call it with (weights not materialised); the layout check is all we can do
    probe = torch.zeros(1, hidden_size, dtype=parameter.dtype, device=parameter.device)
    try:
        with torch.no_grad():
            output = router.forward(probe)
    except Exception as error:  # noqa: BLE001 - any failure is the refusal, in one line
        raise site_error(family, site, f"the router does not run on hidden states [N, {hidden_size}] "
                                       f"({type(error).__name__}: {error})") from None
    if not isinstance(output, (tuple, list)) or len(output) < 3 or not all(
            isinstance(x, torch.Tensor) for x in output[:3]):
        got = type(output).__name__ + (f" of {len(output)}" if isinstance(output, (tuple, list)) else "")
        raise site_error(family, site, f"the router returns {got}, not (logits, top-k weights, top-k ids)")
    logits, weights, ids = output[:3]
    if logits.dim() != 2 or weights.shape != ids.shape or weights.dim() != 2 or logits.shape[0] != weights.shape[0]:
        raise site_error(family, site, f"the router returns shapes {tuple(logits.shape)}, {tuple(weights.shape)}, "
                                       f"{tuple(ids.shape)}, not logits [N, E], weights [N, k], ids [N, k]")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise site_error(family, site, f"the router's third output is {ids.dtype}, not integer expert ids")


def cache_keyword(function) -> str:
    """The keyword under which `function` (a model's forward, transformers' create_causal_mask) takes the KV cache on
    this install: `cache` from transformers 5.25, `past_key_values` before."""
    parameters = callable_parameters(function).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def output_cache(output):
    """The KV cache a forward or generate() returned: its `cache` key from transformers 5.25, `past_key_values` before
    (reading the old name on 5.25 logs a deprecation warning)."""
    return output["cache"] if "cache" in output.keys() else output.past_key_values
