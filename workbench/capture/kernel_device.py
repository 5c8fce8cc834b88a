"""Linear-attention kernels chosen by the tensors' device while a capture is open, as transformers 5.25 does itself.

Before 5.25, transformers' hub-kernel fallback (`use_kernel_func_from_hub_with_fallback`) calls fla's Triton kernel
for every input once fla imports, CPU tensors too, which fail there ("Pointer argument (at 0) cannot be accessed
from Triton (cpu tensor?)"): on a GPU machine with fla installed, a model on the CPU cannot run a forward. From 5.25
the wrapper itself sends tensors off fla's devices to the torch reference (the plain PyTorch function the wrapper
was built from, defined in the modeling file). While a capture is open, each linear-attention kernel global whose
torch reference is found gets the same rule: tensors off CUDA take the reference, CUDA tensors the kernel as before.
The reference is the same math the model's kernel computes; transformers 5.25 runs exactly it on the CPU.

Only where fla is installed (without fla the global already is, or already falls back to, the torch reference).
"""

from __future__ import annotations

import sys

import torch

from ..adapters import LINEAR_ATTENTION, Adapter
from ..adapters.upstream import torch_reference
from ..ops.state_norms.fla_backend import fla_installed
from .recorder import KernelPatch


def on_cuda(args: tuple, kwargs: dict) -> bool:
    """Whether the first tensor argument of a kernel call is on a CUDA device (fla's kernels run there only)."""
    first = next((x for x in (*args, *kwargs.values()) if isinstance(x, torch.Tensor)), None)
    return first is not None and first.device.type == "cuda"


def by_device(kernel, reference):
    """`kernel` for CUDA tensors, `reference` for any other. `__wrapped__` names the kernel, so the signature
    resolver (adapters.upstream.callable_parameters) and `torch_reference` see through this wrapper."""

    def dispatch(*args, **kwargs):
        return kernel(*args, **kwargs) if on_cuda(args, kwargs) else reference(*args, **kwargs)

    dispatch.__wrapped__ = kernel
    dispatch.__name__ = dispatch.__qualname__ = getattr(reference, "__name__", "dispatch")
    dispatch.__module__ = reference.__module__
    return dispatch


def kernels_by_device(modeling_files, names) -> list[KernelPatch]:
    """Patches sending off-CUDA calls of each kernel global `names` of each modeling file to its torch reference;
    none where fla is not installed, and none for a global that has no reference under it."""
    if not fla_installed():
        return []
    patches = []
    for file in modeling_files:
        for name in names:
            kernel = getattr(file, name, None)
            reference = torch_reference(kernel, file) if kernel is not None else None
            if reference is not None:
                patches.append(KernelPatch(file, name, lambda original, reference=reference:
                                           by_device(original, reference)))
    return patches


def model_kernels_by_device(model: torch.nn.Module, adapter: Adapter) -> list[KernelPatch]:
    """`kernels_by_device` for the modeling files of `model`'s linear-attention blocks and the adapter's kernels."""
    site = adapter.linear_attention
    if site is None:
        return []
    files = {type(m).__module__: sys.modules[type(m).__module__]
             for m in adapter.layers_of_kind(model, LINEAR_ATTENTION).values()}
    return kernels_by_device(files.values(), [name for name, _ in site.kernels()])
