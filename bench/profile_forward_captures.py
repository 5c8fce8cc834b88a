"""Where one traced forward's time goes, capture by capture, at a corpus batch shape (--batch-tokens // --tokens rows
of --tokens tokens; companion to bench_corpus_throughput.py, whose nano all-captures ratio was CPU-bound: the nano's
forward is a few ms of GPU work).

For each capture set (none, routing, deltanet, attention, all three): the wall time of `forward + collect` between
device synchronisations (median of --reps), and for "all" the torch.profiler top operators by self CPU time and
the CUDA kernels by device time, minus the plain forward's. Rows are right-padded batches as tracing builds them
(equal lengths here, one begin_batch per forward).

    python bench/profile_forward_captures.py --model nano --tokens 2048 --batch-tokens 65536 --device cuda
    .venv/bin/python bench/profile_forward_captures.py --model nano --tokens 128 --batch-tokens 256 --device cpu \
        --reps 2
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_corpus_throughput import add_model_arguments, load, parse, sync  # noqa: E402

from workbench.capture import CaptureSettings, capture  # noqa: E402
from workbench.capture.recorder import SequenceInfo  # noqa: E402

SETS = {"none": None, "routing": CaptureSettings(),
        "deltanet": CaptureSettings(routing=False, deltanet=True),
        "attention": CaptureSettings(routing=False, attention=True),
        "all": CaptureSettings(deltanet=True, attention=True)}


def traced_forward(model, ids, settings, device):
    """One forward under `settings` with every recorder told the batch's rows, then collect every kind."""
    if settings is None:
        model(input_ids=ids, use_cache=False)
        return
    with capture(model, settings) as run:
        rows = [SequenceInfo(seq_id=f"s{b}", num_tokens=ids.shape[1], spans=[], row=b,
                             padded_tokens=ids.shape[1]) for b in range(ids.shape[0])]
        for recorder in run.recorders.values():
            if hasattr(recorder, "begin_batch"):
                recorder.begin_batch(rows)
        model(input_ids=ids, use_cache=False)
        for kind in run.recorders:
            run.collect(kind)
    sync(device)


def profiled(fn, device: str):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    cpu, gpu, calls = collections.Counter(), collections.Counter(), collections.Counter()
    for event in prof.key_averages():
        if event.device_type.name == "CPU":
            cpu[event.key] += event.self_cpu_time_total
            calls[event.key] += event.count
        gpu[event.key] += getattr(event, "self_device_time_total", 0)
    return cpu, gpu, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parse(parser)
    args.batch = max(1, args.batch_tokens // args.tokens)  # the rows tracing packs of prompts this long
    loaded = load(args)
    model = loaded.model
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    ids = ids.to(next(model.parameters()).device)
    row = {"model": args.model, "batch": args.batch, "tokens": args.tokens}
    with torch.inference_mode():
        for name, settings in SETS.items():
            for _ in range(2):
                traced_forward(model, ids, settings, args.device)
            times = []
            for _ in range(args.reps):
                sync(args.device)
                start = time.perf_counter()
                traced_forward(model, ids, settings, args.device)
                sync(args.device)
                times.append(time.perf_counter() - start)
            row[f"{name}_ms"] = round(statistics.median(times) * 1e3, 2)
        print(json.dumps(row), flush=True)
        plain_cpu, plain_gpu, plain_calls = profiled(lambda: traced_forward(model, ids, None, args.device), args.device)
        cpu, gpu, calls = profiled(lambda: traced_forward(model, ids, SETS["all"], args.device), args.device)
    print(f"CPU self time (ms): plain {sum(plain_cpu.values()) / 1e3:.1f}, all captures {sum(cpu.values()) / 1e3:.1f};"
          f" CUDA (ms): plain {sum(plain_gpu.values()) / 1e3:.1f}, all {sum(gpu.values()) / 1e3:.1f}")
    print("top operators by extra self CPU time (ms, extra calls):")
    extra = {k: cpu[k] - plain_cpu.get(k, 0) for k in cpu}
    for key, us in sorted(extra.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {us / 1e3:8.2f}  {calls[key] - plain_calls.get(key, 0):6d}  {key[:100]}")
    print("top kernels by extra CUDA time (ms):")
    extra = {k: gpu[k] - plain_gpu.get(k, 0) for k in gpu}
    for key, us in sorted(extra.items(), key=lambda kv: -kv[1])[: args.top]:
        if us:
            print(f"  {us / 1e3:8.2f}  {key[:100]}")


if __name__ == "__main__":
    main()
