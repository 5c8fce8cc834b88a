"""Per-token DeltaNet state norms from chunk-start states, alone: the fused Triton kernel against the batched
PyTorch ops, at one Qwen3-Next DeltaNet layer's real dimensions (16 key / 32 value heads of 128, chunks of 64).

    python bench/bench_state_norm_kernel.py --tokens 32768       (on the GPU)

Inputs are random in fla's layout and dtypes (h [B, N, Hv, K, V] and v_new in bf16, as a bf16 model's recursion
returns them; keys unit-norm). Prints the median time of each variant over --reps calls (CUDA-synchronised) and
the kernel's largest norm-relative difference from the PyTorch path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from workbench.ops.state_norms import state_norms_from_chunk_states, triton_norms


def timed(fn, reps: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    B, T, Hk, Hv, K, V, C = args.batch, args.tokens, 16, 32, 128, 128, 64
    N = -(-T // C)
    gen = torch.Generator(device="cuda").manual_seed(0)
    k = torch.nn.functional.normalize(torch.randn(B, T, Hk, K, device="cuda", generator=gen), dim=-1).bfloat16()
    g = -torch.rand(B, T, Hv, device="cuda", generator=gen) * 0.1
    h = (torch.randn(B, N, Hv, K, V, device="cuda", generator=gen) * 0.3).bfloat16()
    v_new = (torch.randn(B, T, Hv, V, device="cuda", generator=gen) * 0.1).bfloat16()
    states = h.transpose(1, 2)  # what the capture passes: a view in [B, Hv, N, K, V]

    def torch_path():
        return state_norms_from_chunk_states(k, g, states, v_new, chunk_size=C, use_qk_l2norm=False, kernel="torch")

    result = {"tokens": T, "batch": B, "torch_ms": round(timed(torch_path, args.reps), 3)}
    reference = torch_path().state_norm
    for block_v in (32, 64, 128):
        for warps in (4, 8):
            def kernel(block_v=block_v, warps=warps):
                return triton_norms.chunk_state_norms(k, g, h, v_new, C, block_v=block_v, num_warps=warps)
            diff = ((kernel() - reference).abs().max() / reference.abs().max()).item()
            result[f"kernel_bv{block_v}_w{warps}_ms"] = round(timed(kernel, args.reps), 3)
            result[f"kernel_bv{block_v}_w{warps}_rel_diff"] = float(f"{diff:.3g}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
