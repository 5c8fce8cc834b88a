"""Capture overhead: traced forward time / plain forward time, for a configurable random-init model.

Default is a slice of Qwen3-Next-80B-A3B at its real per-layer dimensions (hidden 2048, 512 experts
top-10, DeltaNet 16/32 heads of 128, attention 16/2 heads of 256) with N layers 3:1, small vocab (the
80B's 151,936-entry lm_head would only add a constant to both sides).
Run on the GPU:  python bench/bench_capture_overhead.py --layers 4 --tokens 32768 --device cuda
On the CPU:      .venv/bin/python bench/bench_capture_overhead.py --dims tiny --tokens 2048 --device cpu
Plain and traced forwards alternate; each figure is the median of --reps timed calls after warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers: tests/support/
from support.toy import REAL_80B_DIMS, TINY_DIMS, qwen3_next_config  # noqa: E402

from workbench.adapters import get_adapter  # noqa: E402
from workbench.capture import CaptureSettings, capture  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def kernel_path() -> str:
    from transformers.models.qwen3_next import modeling_qwen3_next as m

    fn = m.torch_chunk_gated_delta_rule
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')}"


def add_slice_arguments(parser: argparse.ArgumentParser) -> None:
    """The model-slice and timing options both overhead benchmarks take."""
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--dims", choices=["real", "tiny"], default="real")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--vocab", type=int, default=1024)


def build_slice(args, device: torch.device, dtype: torch.dtype):
    """Random-init Qwen3-Next with `args.layers` layers 3:1 at real 80B (or tiny) per-layer dims, on device."""
    from transformers import AutoModelForCausalLM

    dims = dict(REAL_80B_DIMS if args.dims == "real" else TINY_DIMS, intermediate_size=512)
    config = qwen3_next_config(args.layers, args.vocab, dims=dims)
    torch.manual_seed(0)
    with device:
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    for router in get_adapter("qwen3_next").routers(model).values():  # from_config leaves router weights at zero
        torch.nn.init.normal_(router.weight, std=0.02)
    return model, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slice_arguments(parser)
    parser.add_argument("--router-logits", action="store_true")
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model, config = build_slice(args, device, dtype)
    input_ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)
    settings = CaptureSettings(router_logits=args.router_logits)

    def plain():
        model(input_ids=input_ids, use_cache=False)

    collect_times = []

    def traced():  # registering and removing the hooks is inside the timed region
        with capture(model, settings) as run:
            model(input_ids=input_ids, use_cache=False)
            collect_times.append(_timed(lambda: run.collect("routing"), device))  # the copy off the device alone

    plain_times, traced_times = [], []
    with torch.inference_mode():
        for _ in range(2):  # warm-up of both paths
            plain()
            traced()
        for _ in range(args.reps):
            plain_times.append(_timed(plain, device))
            traced_times.append(_timed(traced, device))
    # the per-layer reduction alone, on router-shaped logits
    from workbench.ops.router_stats import router_token_stats

    logits = torch.randn(args.tokens, config.num_experts, device=device, dtype=dtype)
    ids = logits.float().softmax(-1).topk(config.num_experts_per_tok, -1).indices
    for _ in range(3):
        router_token_stats(logits, ids)
    stats_times = [_timed(lambda: router_token_stats(logits, ids), device) for _ in range(args.reps)]
    params = sum(p.numel() for p in model.parameters())
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dims": args.dims,
        "layers": args.layers,
        "layer_types": config.layer_types,
        "tokens": args.tokens,
        "dtype": args.dtype,
        "params": params,
        "deltanet_kernel": kernel_path(),
        "plain_ms": 1e3 * statistics.median(plain_times),
        "traced_ms": 1e3 * statistics.median(traced_times),
    }
    result["ratio"] = result["traced_ms"] / result["plain_ms"]
    result["collect_ms"] = 1e3 * statistics.median(collect_times[-args.reps:])
    result["router_stats_ms_per_layer"] = 1e3 * statistics.median(stats_times)
    if device.type == "cuda":
        result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    print(json.dumps(result))
    print(f"routing capture overhead: {result['ratio']:.3f}x ({result['plain_ms']:.1f} ms -> {result['traced_ms']:.1f} ms)")


if __name__ == "__main__":
    main()
