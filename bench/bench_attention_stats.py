"""Attention-recall statistics for one real-dimension full-attention layer (16 query heads, 2 KV heads,
head dim 256) at long context, blockwise over keys, next to the plain sdpa forward: time and peak memory.

GPU:  python bench/bench_attention_stats.py --tokens 131072 --queries 1024 --device cuda
CPU:  .venv/bin/python bench/bench_attention_stats.py --tokens 4096 --queries 64 --device cpu --dtype float32
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from workbench.ops.attention_stats import blockwise_attention_stats


def measure(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    extra = (torch.cuda.max_memory_allocated() - base) / 1e9 if device.type == "cuda" else float("nan")
    return out, elapsed, extra


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=131072)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--block", type=int, default=4096)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    shape_q, shape_kv = (1, args.heads, args.tokens, args.dim), (1, args.kv_heads, args.tokens, args.dim)
    q = torch.randn(shape_q, device=device, dtype=dtype)
    k = torch.randn(shape_kv, device=device, dtype=dtype)
    v = torch.randn(shape_kv, device=device, dtype=dtype)
    positions = torch.linspace(0, args.tokens - 1, args.queries, device=device).long().unique()
    needle = ("needle", args.tokens // 2, args.tokens // 2 + 32)
    scaling = args.dim ** -0.5

    def sdpa():
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=True)

    def stats():
        return blockwise_attention_stats(q, k, positions, scaling, [needle], top_k=8, block_size=args.block)

    sdpa()
    _, t_sdpa, mem_sdpa = measure(sdpa, device)
    stats()
    result_stats, t_stats, mem_stats = measure(stats, device)
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "tokens": args.tokens, "queries": len(positions), "heads": args.heads, "kv_heads": args.kv_heads,
        "dim": args.dim, "dtype": args.dtype, "block": args.block,
        "sdpa_ms": 1e3 * t_sdpa, "sdpa_extra_peak_gb": mem_sdpa,
        "stats_ms": 1e3 * t_stats, "stats_extra_peak_gb": mem_stats,
        "full_weights_would_be_gb": args.heads * args.tokens * args.tokens * 4 / 1e9,
        "mean_needle_mass_last_query": result_stats.span_mass["needle"][0, -1].float().mean().item(),
    }
    print(json.dumps(result))
    print(f"{args.tokens} tokens, {len(positions)} queries: sdpa {result['sdpa_ms']:.1f} ms (+{mem_sdpa:.2f} GB), "
          f"stats {result['stats_ms']:.1f} ms (+{mem_stats:.2f} GB); a T x T fp32 map would be "
          f"{result['full_weights_would_be_gb']:.0f} GB")


if __name__ == "__main__":
    main()
