"""fla's gated-delta-rule chunk recursion as a backend of the state statistics: whether fla is installed, whether its
chunk recursion imports and passes its calibration on a device (`fla_for`, probed once per device), the module whose
global the DeltaNet recorder wraps to read the model's own chunk states (`fla_chunk_module`), and reading the
chunk-start states h and corrected values v_new out of one call of it (`kernel_states`).
"""

from __future__ import annotations

import importlib
import importlib.util

import torch

from . import fla_states

_FLA: dict[str, tuple] = {}  # device -> (fwd_h, g_scale) after a successful calibration, or (None, reason)


def fla_installed() -> bool:
    """Whether flash-linear-attention can be imported (the one place this is asked; nothing is imported here)."""
    return importlib.util.find_spec("fla") is not None


def fla_for(device: torch.device) -> tuple:
    """(fwd_h, g_scale) when fla's chunk recursion imports and calibrates on `device`, else (None, reason).
    Calibrated once per device and process."""
    key = str(device)
    if key not in _FLA:
        if device.type != "cuda":
            _FLA[key] = (None, f"fla needs a CUDA device, got {device}")
        elif not fla_installed():
            _FLA[key] = (None, "fla is not installed")
        else:
            try:  # any failure of this optional fast path (import, signature, Triton, numbers) means: use torch
                fwd_h = fla_states.load_fla_fwd_h()
                _FLA[key] = (fwd_h, fla_states.calibrate(fwd_h, device))
            except Exception as error:  # noqa: BLE001 - the reason is kept and reported (DeltaNetCapture, bench)
                _FLA[key] = (None, f"{fla_states.FLA_FWD_H} unusable: {type(error).__name__}: {error}")
    return _FLA[key]


def fla_chunk_module():
    """fla's gated-delta-rule chunk module (its forward calls the chunk recursion by this module's global name),
    or None when fla is not installed or does not have it (the fla path then recomputes the states)."""
    if not fla_installed():
        return None
    try:
        module = importlib.import_module(fla_states.FLA_CHUNK_MODULE)
    except ImportError:
        return None
    return module if hasattr(module, fla_states.FLA_FWD_H_NAME) else None


def kernel_states(value: torch.Tensor, arguments: dict, result) -> tuple | None:
    """(kernel keys [B, T, Hk, K], h [B, N, Hv, K, V], v_new [B, T, Hv, V], chunk size) from one call of fla's
    chunk recursion (its bound `arguments` and its `result`), or None when it is not the recursion of the kernel
    call whose values are `value` [B, T, Hv, V] in the layout the norms read (value-first states, packed varlen
    sequences, another shape): the caller then recomputes the states itself."""
    k, (h, v_new) = arguments["k"], result[:2]
    B, T, Hv, V = value.shape
    chunk_size = arguments.get("chunk_size", fla_states.CHUNK_SIZE)
    N = -(-T // chunk_size)
    if arguments.get("state_v_first") or arguments.get("cu_seqlens") is not None or v_new is None:
        return None
    if k.shape[:2] != (B, T) or tuple(h.shape) != (B, N, Hv, k.shape[-1], V) or tuple(v_new.shape) != (B, T, Hv, V):
        return None
    return k, h, v_new, chunk_size
