"""Where routing capture's per-forward time goes on the real-dimension slice (companion to
bench_capture_overhead.py): CUDA time per kernel name in a traced forward minus a plain one (torch.profiler), and
the wall time of each step of `collect` (stacking the layers, pinned buffers, the copies, the wait).

    python bench/profile_capture_overhead.py --layers 4 --tokens 32768 --device cuda
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import torch
from bench_capture_overhead import add_slice_arguments, build_slice

from workbench.capture import CaptureSettings, capture


def kernel_times(fn) -> dict[str, float]:
    """CUDA microseconds per kernel name over one call of fn."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    times = collections.Counter()
    for event in prof.key_averages():
        if event.device_type.name == "CUDA" or getattr(event, "self_device_time_total", 0):
            times[event.key] += getattr(event, "self_device_time_total", 0)
    return dict(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_slice_arguments(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    model, _ = build_slice(args, device, getattr(torch, args.dtype))
    ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)
    settings = CaptureSettings()
    runs = []

    def plain():
        model(input_ids=ids, use_cache=False)

    def traced():
        with capture(model, settings) as run:
            model(input_ids=ids, use_cache=False)
            runs.append(run.collect("routing"))

    with torch.inference_mode():
        for _ in range(3):
            plain()
            traced()
        base, with_capture = kernel_times(plain), kernel_times(traced)
    extra = {name: with_capture.get(name, 0) - base.get(name, 0) for name in set(base) | set(with_capture)}
    top = sorted(extra.items(), key=lambda item: -abs(item[1]))[:15]
    print(json.dumps({"plain_cuda_ms": sum(base.values()) / 1e3, "traced_cuda_ms": sum(with_capture.values()) / 1e3}))
    for name, us in top:
        print(f"{us / 1e3:9.3f} ms  {name[:110]}")

    # collect, step by step (the recorder's own fields after one traced forward)
    from workbench.capture.transfer import stack_layers

    with torch.inference_mode(), capture(model, settings) as run:
        model(input_ids=ids, use_cache=False)
        torch.cuda.synchronize()
        recorder = run.recorder("routing")
        steps = {}
        start = time.perf_counter()
        layers = sorted(recorder._router)
        fields = {name: stack_layers([[r[name] for r in recorder._router[layer]] for layer in layers])
                  for name in ("topk_ids", "topk_weights", "router_entropy", "topk_mass", "topk_margin")}
        torch.cuda.synchronize()
        steps["stack_ms"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        host = {name: torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for name, t in fields.items()}
        steps["pinned_alloc_ms"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        for name, tensor in fields.items():
            host[name].copy_(tensor, non_blocking=True)
        steps["copy_issue_ms"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        torch.cuda.synchronize()
        steps["copy_wait_ms"] = (time.perf_counter() - start) * 1e3
        steps["bytes"] = sum(t.numel() * t.element_size() for t in fields.values())
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
