"""Per-token Gated DeltaNet state norms from chunk-start states in one fused Triton kernel (the GPU fast path).

The same chunk identity as `chunked.py` (see its docstring for the math): inside a chunk of C tokens with start
state S0 [K, V], cumulative log decay c, decay matrix D_rj = exp(c_r - c_j) (j <= r), keys K [C, K] and
corrected values Delta [C, V],
    ||S_r||_F^2 = e^{2c_r} ||S0||^2 + 2 e^{c_r} (D b)_r + rowsum((D M) o D)_r,
    b_j = k_j^T S0 delta_j,   M = (K K^T) o (Delta Delta^T).
Every term is a sum over the value columns of S0 and Delta, so the kernel splits V into blocks: one program per
(chunk, batch row x value head, value block) writes that block's share of norm^2 for the chunk's C tokens, and the
shares are summed afterwards (no atomics: the result is deterministic).

Why a kernel: `state_norms_from_chunk_states` builds the same terms from batched PyTorch ops, which cast h (the
chunk-start states, [B, N, Hv, K, V], 0.5 GB in bf16 at 32K tokens and 32 heads) to an fp32 copy and keep
several [B, H, N, C, C] temporaries; at 32K tokens that took about 8 ms per layer on an H200. Here each program
reads its h tile, keys and values once, in the kernel's own dtype and layout (no transpose, no fp32 copy).

Precision: products of bf16 operands are exact in fp32 and every dot accumulates in fp32; fp32 operands use IEEE
fp32 dots (no TF32), so the result matches the PyTorch path to fp32 rounding (tests/ops/test_triton_norms.py,
against it and the fp64 token scan).

Triton is optional: `available(device)` says whether this path can run (ops/triton_support.py: CUDA and an importable
triton, or triton's interpreter on CPU tensors, which the CPU tests use). The kernel: ops/state_norm_kernel.py.
"""

from __future__ import annotations

import torch

from .. import triton_support

MIN_DOT = 16  # tl.dot needs every dimension >= 16 (and powers of two for the block shapes)
KERNEL = "state_norm_kernel"  # workbench/ops/state_norm_kernel.py


def _power_of_two(n: int) -> bool:
    return n >= MIN_DOT and n & (n - 1) == 0


def available(device: torch.device | str) -> bool:
    """Whether the Triton kernel can run on tensors of `device` here."""
    return triton_support.runs_on(device, KERNEL)


def supports(k: torch.Tensor, v_new: torch.Tensor, chunk_size: int) -> bool:
    """Whether the shapes suit the kernel: head dims and chunk size powers of two, at least 16."""
    return all(_power_of_two(n) for n in (k.shape[-1], v_new.shape[-1], chunk_size))


def chunk_state_norms(
    k: torch.Tensor, g: torch.Tensor, h: torch.Tensor, v_new: torch.Tensor, chunk_size: int = 64,
    block_v: int = 128, num_warps: int = 8,
) -> torch.Tensor:
    """Per-token state norms ||S_t||_F [B, T, Hv] (fp32) from one fused kernel.

    Args:
        k: [B, T, Hk, K] kernel keys (already L2-normalised, as the recursion saw them); g: [B, T, Hv] log decay.
        h: [B, N, Hv, K, V] chunk-start states in fla's layout (h[:, 0] the initial state), any float dtype.
        v_new: [B, T, Hv, V] corrected values (beta included), as fla's recursion returns them.
        chunk_size: the chunk size that produced h (fla: 64); block_v: value columns per program.
    """
    module = triton_support.kernel_module(KERNEL)
    if module is None:
        raise RuntimeError("the Triton state-norm kernel needs triton, which does not import here")
    B, T, Hk, K = k.shape
    Hv, V = v_new.shape[2], v_new.shape[3]
    N = -(-T // chunk_size)
    if g.shape != (B, T, Hv) or v_new.shape[:2] != (B, T) or tuple(h.shape) != (B, N, Hv, K, V) or Hv % Hk:
        raise ValueError(f"shapes do not fit: k {tuple(k.shape)}, g {tuple(g.shape)}, h {tuple(h.shape)}, "
                         f"v_new {tuple(v_new.shape)}, chunk_size {chunk_size}")
    if not supports(k, v_new, chunk_size):
        raise ValueError(f"K={K}, V={V} and chunk_size={chunk_size} must be powers of two >= {MIN_DOT}")
    block_v = min(block_v, V)
    k, g, h, v_new = (x if x.stride(-1) == 1 else x.contiguous() for x in (k, g, h, v_new))
    dot = getattr(module.tl, triton_support.dot_dtype(k, h, v_new))

    out = torch.empty(B * Hv, V // block_v, N * chunk_size, dtype=torch.float32, device=v_new.device)
    module.chunk_norm_sq[(N, B * Hv, V // block_v)](
        k, g, h, v_new, out, T, N,
        k.stride(0), k.stride(1), k.stride(2), g.stride(0), g.stride(1),
        h.stride(0), h.stride(1), h.stride(2), h.stride(3), v_new.stride(0), v_new.stride(1), v_new.stride(2),
        HV=Hv, G=Hv // Hk, K=K, BV=block_v, C=chunk_size, DOT=dot,
        num_warps=num_warps,
    )
    norm_sq = out.sum(1)[:, :T].clamp_min_(0)  # [B * Hv, T]
    return norm_sq.sqrt_().reshape(B, Hv, T).transpose(1, 2)
