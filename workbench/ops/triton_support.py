"""Where the workbench's own Triton kernels run, and loading them only when they do.

Each kernel lives in its own module that imports triton at module level (triton's interpreter patches `tl` in the
kernel's module globals), loaded here on first use: the rest of the package never pays triton's import. The library runs a kernel on CUDA
tensors; called directly, a kernel also runs on CPU tensors under triton's interpreter (TRITON_INTERPRET=1), which
is how the CPU tests check it.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

import torch


def interpreted() -> bool:
    """Whether triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


@functools.cache
def kernel_module(name: str) -> ModuleType | None:
    """workbench.ops.<name>, or None when triton does not import here."""
    try:
        return importlib.import_module(f"workbench.ops.{name}")
    except ImportError:
        return None


def runs_on(device: torch.device | str, name: str) -> bool:
    """Whether the library should run the kernel module `name` for tensors of `device`: CUDA tensors, with triton
    importable. (CPU tensors keep the PyTorch paths even under the interpreter, which is for the kernels' tests.)"""
    return torch.device(device).type == "cuda" and kernel_module(name) is not None


def dot_dtype(*tensors: torch.Tensor) -> str:
    """The tl dtype name for tl.dot operands: the tensors' common 16-bit float type, else float32. The interpreter
    always gets float32: it computes 16-bit dots wrongly (numpy has no bfloat16), and fp32 is exact there."""
    dtypes = {t.dtype for t in tensors}
    if interpreted() or len(dtypes) != 1:
        return "float32"
    return {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtypes.pop(), "float32")
