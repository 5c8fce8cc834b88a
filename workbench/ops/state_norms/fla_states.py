"""Chunk-start states and corrected values from fla's chunk recursion, recomputed: the fallback of the fla path.

During capture the fla path normally reads h and v_new straight from the model's own call of the recursion
(capture/deltanet/recorder.py, `wrap_chunk_states`). This module is for when that call does not happen (the model runs
transformers' torch kernel or another fla backend, or a benchmark has bare inputs): it builds the recursion's
inputs itself and runs fla's kernel once more ("fla-recompute").

The only sequential part of the chunked gated delta rule is the recursion over chunks (C tokens each)
    delta_n = u_n - w_n S_n,   S_{n+1} = e^{c_last} S_n + sum_j e^{c_last - c_j} k_j delta_j^T
with c the chunk-local cumulative log decay and (w, u) the WY representation of the chunk:
    A = (I + strictly_lower(diag(beta) K K^T o D))^{-1},  w = A (beta k e^{c}),  u = A (beta v).
fla runs that recursion for all chunks in one Triton kernel, `chunk_gated_delta_rule_fwd_h`
(fla.ops.common.chunk_delta_h), returning the chunk-start states h [B, N, Hv, K, V] and delta (v_new).
Here w and u come from one batched triangular solve in PyTorch (as in `chunked_state_stats`), so the kernel
sees inputs this module defines, with keys already L2-normalised and repeated to the value heads (Hk = Hv).

fla's gate convention moved between releases (natural-log cumulative decay and exp, later log2 and exp2), so
`calibrate` runs the kernel once on a small case against the PyTorch chunk loop and returns the factor to apply
to c (1 or 1/ln 2), or raises when neither matches. Precision: fla's tl.dot may use TF32 on fp32 inputs, so
expect about 1e-3 relative error in h and in the norms (the PyTorch path matches the fp64 scan to 1e-4).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .chunked import _decay_matrix, _to_chunks, chunked_state_stats
from .naive import kernel_k

CHUNK_SIZE = 64  # fla's chunk size
FLA_FWD_H = "fla.ops.common.chunk_delta_h.chunk_gated_delta_rule_fwd_h"
FLA_FWD_H_NAME = FLA_FWD_H.rsplit(".", 1)[1]
FLA_CHUNK_MODULE = "fla.ops.gated_delta_rule.chunk"  # chunk_gated_delta_rule_fwd calls FLA_FWD_H_NAME from here
G_SCALES = (1.0, 1.0 / math.log(2.0))  # natural-log gate (older fla), log2 gate (fla with exp2 kernels)


def load_fla_fwd_h() -> Callable:
    """fla's chunk recursion kernel; raises ImportError (with the path tried) when fla is not importable."""
    import importlib

    module_name, name = FLA_FWD_H.rsplit(".", 1)
    module = importlib.import_module(module_name)
    return getattr(module, name)


def _from_chunks(x: torch.Tensor, seq_len: int) -> torch.Tensor:
    """[B, H, N, C, *rest] -> [B, T, H, *rest] (fla's time-major layout), padding dropped."""
    B, H, N, C = x.shape[:4]
    return x.reshape(B, H, N * C, *x.shape[4:])[:, :, :seq_len].transpose(1, 2).contiguous()


def wy_inputs(k, v, g, beta, chunk_size: int = CHUNK_SIZE, use_qk_l2norm: bool = True, dtype=torch.float32):
    """k [B, T, Hk, K], v [B, T, Hv, V], g, beta [B, T, Hv] -> fla's fwd_h inputs, time-major, in `dtype`:
    kn [B, T, Hv, K] kernel keys, w [B, T, Hv, K], u [B, T, Hv, V], c [B, T, Hv] chunk-local cumulative g."""
    T, Hv = v.shape[1], v.shape[2]
    kn = kernel_k(k, Hv, use_qk_l2norm, dtype)  # [B, T, Hv, K]
    k_c, v_c = _to_chunks(kn, chunk_size, dtype), _to_chunks(v, chunk_size, dtype)  # [B, H, N, C, *]
    g_c, beta_c = _to_chunks(g, chunk_size, dtype), _to_chunks(beta, chunk_size, dtype)  # [B, H, N, C]
    c = g_c.cumsum(-1)
    k_beta = k_c * beta_c[..., None]
    system = (k_beta @ k_c.transpose(-1, -2)) * _decay_matrix(c)  # unit lower triangular (diagonal ignored)
    u = torch.linalg.solve_triangular(system, v_c * beta_c[..., None], upper=False, unitriangular=True)
    w = torch.linalg.solve_triangular(system, k_beta * c.exp()[..., None], upper=False, unitriangular=True)
    return kn.contiguous(), _from_chunks(w, T), _from_chunks(u, T), _from_chunks(c, T)


def chunk_states_from_kernel(
    fwd_h: Callable,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    g_scale: float = 1.0,
    use_qk_l2norm: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the chunk recursion with `fwd_h` (fla's kernel or a stand-in with its contract).

    Args: k [B, T, Hk, K] raw keys, v [B, T, Hv, V], g [B, T, Hv] log decay, beta [B, T, Hv],
        initial_state [B, Hv, K, V] or None; g_scale multiplies the cumulative gate (see `calibrate`).
    Returns: chunk_states [B, Hv, N, K, V] (state at the start of each chunk of 64) and v_new [B, T, Hv, V],
        the arguments `state_norms_from_chunk_states` takes.
    """
    kn, w, u, c = wy_inputs(k, v, g, beta, CHUNK_SIZE, use_qk_l2norm, dtype)
    h0 = None if initial_state is None else initial_state.to(torch.float32).contiguous()
    h, v_new, _ = fwd_h(k=kn, w=w, u=u, g=(c * g_scale).contiguous(), initial_state=h0, output_final_state=False)
    return h.transpose(1, 2).to(dtype), v_new.to(dtype)  # h: [B, N, Hv, K, V] -> [B, Hv, N, K, V]


def calibrate(fwd_h: Callable, device: torch.device | str, tol: float = 1e-2) -> float:
    """Run `fwd_h` on a seeded case (T = 130, 2 heads, K = V = 64) and return the gate scale whose chunk
    states match `chunked_state_stats` within `tol` (norm-relative); ValueError when none does."""
    gen = torch.Generator().manual_seed(0)
    B, T, H, K, V = 1, 130, 2, 64, 64
    k, v = torch.randn(B, T, H, K, generator=gen), torch.randn(B, T, H, V, generator=gen)
    g = -torch.rand(B, T, H, generator=gen) * 0.3
    beta = torch.rand(B, T, H, generator=gen)
    h0 = torch.randn(B, H, K, V, generator=gen) * 0.1
    ref = chunked_state_stats(k, k, v, g, beta, h0, chunk_size=CHUNK_SIZE, return_chunk_states=True)
    errors = {}
    for scale in G_SCALES:
        args = (x.to(device) for x in (k, v, g, beta, h0))
        states, v_new = chunk_states_from_kernel(fwd_h, *args, g_scale=scale)
        err = max(
            ((states.cpu() - ref.chunk_states).abs().max() / ref.chunk_states.abs().max()).item(),
            ((v_new.cpu() - ref.v_new).abs().max() / ref.v_new.abs().max()).item(),
        )
        if err <= tol:
            return scale
        errors[scale] = err
    raise ValueError(f"{FLA_FWD_H} matches the PyTorch chunk recursion under no known gate convention: {errors}")
