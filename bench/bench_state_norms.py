"""Per-token DeltaNet state norms for one real-dimension layer (16 key heads, 32 value heads, 128x128 state):
the fp64 token-by-token scan (the reference) against the chunked identity (loop over chunks), the loop-free
identity from given chunk-start states, and (on CUDA with fla) the whole fla path: fla's Triton recursion for
the chunk-start states from fp32 inputs, then the loop-free identity. Prints times, speed-ups against the scan
and the largest norm-relative difference from it. Inputs are fp32.

GPU:  python bench/bench_state_norms.py --tokens 32768 --device cuda
CPU:  .venv/bin/python bench/bench_state_norms.py --tokens 1024 --heads-k 2 --heads-v 4 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from workbench.ops.state_norms.fla_backend import fla_for
from workbench.ops.state_norms import chunked_state_stats, naive_state_stats, state_norms_from_chunk_states
from workbench.ops.state_norms.fla_states import chunk_states_from_kernel


def _timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def random_inputs(tokens, heads_k, heads_v, dim, device, seed=0):
    generator = torch.Generator(device=device).manual_seed(seed)
    q = torch.randn(1, tokens, heads_k, dim, device=device, generator=generator)
    k = torch.randn(1, tokens, heads_k, dim, device=device, generator=generator)
    v = torch.randn(1, tokens, heads_v, dim, device=device, generator=generator)
    # decays as the model makes them: g = -exp(A_log) * softplus(a + dt_bias), half-lives ~1..1000 tokens
    g = -torch.nn.functional.softplus(torch.randn(1, tokens, heads_v, device=device, generator=generator) - 4)
    beta = torch.sigmoid(torch.randn(1, tokens, heads_v, device=device, generator=generator))
    return q, k, v, g, beta


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--heads-k", type=int, default=16)
    parser.add_argument("--heads-v", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    q, k, v, g, beta = random_inputs(args.tokens, args.heads_k, args.heads_v, args.dim, device)

    reference, t_scan = _timed(lambda: naive_state_stats(q, k, v, g, beta), device)
    chunked_state_stats(q, k, v, g, beta)  # warm-up
    times = []
    for _ in range(args.reps):
        chunked, t = _timed(lambda: chunked_state_stats(q, k, v, g, beta, return_chunk_states=True), device)
        times.append(t)
    t_chunked = min(times)
    fused_times = []
    for _ in range(args.reps):
        fused, t = _timed(lambda: state_norms_from_chunk_states(k, g, chunked.chunk_states, chunked.v_new), device)
        fused_times.append(t)
    t_fused = min(fused_times)
    fwd_h, fla_detail = fla_for(device)
    fla_path = t_fla = None
    if fwd_h is not None:

        def fla_norms():
            states, v_new = chunk_states_from_kernel(fwd_h, k, v, g, beta, g_scale=fla_detail)
            return state_norms_from_chunk_states(k, g, states, v_new)

        fla_norms()  # warm-up (Triton compiles)
        fla_times = []
        for _ in range(args.reps):
            fla_path, t = _timed(fla_norms, device)
            fla_times.append(t)
        t_fla = min(fla_times)

    def rel(a):
        return ((a.double() - reference.state_norm).abs().max() / reference.state_norm.abs().max()).item()

    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "tokens": args.tokens,
        "heads_k": args.heads_k,
        "heads_v": args.heads_v,
        "dim": args.dim,
        "scan_fp64_s": t_scan,
        "chunked_fp32_s": t_chunked,
        "from_chunk_states_s": t_fused,
        "speedup_chunked": t_scan / t_chunked,
        "rel_err_chunked": rel(chunked.state_norm),
        "rel_err_from_chunk_states": rel(fused.state_norm),
        "fla_path_s": t_fla,
        "speedup_fla_path": None if t_fla is None else t_scan / t_fla,
        "rel_err_fla_path": None if fla_path is None else rel(fla_path.state_norm),
        "fla_unavailable": None if fwd_h is not None else fla_detail,
    }
    print(json.dumps(result))
    print(f"per-token norms, {args.tokens} tokens: scan {t_scan:.2f} s, chunked {1e3 * t_chunked:.1f} ms "
          f"({result['speedup_chunked']:.0f}x), loop-free from chunk states {1e3 * t_fused:.1f} ms; "
          f"max rel diff {result['rel_err_chunked']:.1e}")
    if t_fla is not None:
        print(f"fla path (Triton chunk states + loop-free norms): {1e3 * t_fla:.1f} ms "
              f"({result['speedup_fla_path']:.0f}x the scan), max rel diff {result['rel_err_fla_path']:.1e}")


if __name__ == "__main__":
    main()
