"""transformers' own torch reference kernels, whatever wraps them on the installed release.

The modeling files bind each delta-rule kernel global to a dispatch wrapper around the plain PyTorch function; with
fla installed, transformers before 5.25 sends CPU tensors through it to fla's Triton kernels, which fail there. Tests
that compare against transformers' kernels on CPU tensors take the plain function under the wrapper."""

import importlib

from workbench.adapters.upstream import torch_reference


def reference_kernel(module_name: str, name: str):
    """The plain torch function behind kernel global `name` of modeling module `module_name` (the global itself
    where nothing wraps it)."""
    module = importlib.import_module(module_name)
    kernel = getattr(module, name)
    return torch_reference(kernel, module) or kernel
