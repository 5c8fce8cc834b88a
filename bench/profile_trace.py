"""Where a corpus trace's time goes. Main thread: the model forward (timed between device synchronisations) and
collect (the recorders' copy off the device). tracing.TableBuilder, overlapping the next forward: table building
on its pool (summed over threads), then on its sink thread TraceWriter.add and part commits (which wait for their
files). Writer pool: Parquet encoding, summed over its threads. The synchronisations around the forward make the
total a little slower than an unprofiled trace (bench_corpus_throughput.py gives the throughput figures).

    python bench/profile_trace.py --model nano --prompts 96 --tokens 2048 --batch-tokens 65536 --device cuda
    .venv/bin/python bench/profile_trace.py --model nano --prompts 8 --tokens 256 --batch-tokens 1024 --device cpu
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_corpus_throughput import MODES, add_corpus_arguments, corpus, load, parse, sync  # noqa: E402

from workbench import tracing  # noqa: E402
from workbench.capture.context import CaptureRun  # noqa: E402
from workbench.trace import writer as writer_module  # noqa: E402
from workbench.tracing import trace_prompts  # noqa: E402

TIMES: dict[str, float] = defaultdict(float)
CPU: dict[str, float] = defaultdict(float)  # the calling thread's CPU time (time.thread_time) of the same calls


def timed_method(owner, name: str, label: str, device: str | None = None) -> None:
    """Add the wall time of every call of owner.name to TIMES[label] and the thread's CPU time to CPU[label]; with
    `device`, between synchronisations. Wall well above CPU time: the thread waited (the GIL, a lock, the device)."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if device:
            sync(device)
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            if device:
                sync(device)
            TIMES[label] += time.perf_counter() - start
            CPU[label] += time.thread_time() - cpu

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser, prompts=96)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also print the N main-thread functions with the most cumulative time (cProfile)")
    args = parse(parser)

    loaded = load(args)
    prompts = corpus(loaded.tokenizer, args.prompts, args.tokens)
    model = loaded.model
    state = {}

    def pre(module, a, k):
        sync(args.device)
        state["t"], state["cpu"] = time.perf_counter(), time.thread_time()

    def post(module, a, k, out):
        sync(args.device)
        TIMES["main: forward"] += time.perf_counter() - state["t"]
        CPU["main: forward"] += time.thread_time() - state["cpu"]

    timed_method(CaptureRun, "collect", "main: collect", args.device)
    timed_method(tracing.TableBuilder, "submit", "main: submit (waits when the builder is behind)")
    timed_method(tracing.TableBuilder, "finish", "main: wait for the builder at the end")
    timed_method(tracing.TableBuilder, "_token_tables", "build pool: tokens and spans tables (summed over threads)")
    timed_method(CaptureRun, "build_tables", "build pool: capture tables (summed over threads)")
    timed_method(tracing.TableBuilder, "_add", "sink: add + commit (incl. waiting for the batch's tables)")
    timed_method(writer_module.TraceWriter, "add", "sink: writer.add")
    timed_method(writer_module.TraceWriter, "commit_part", "sink: commit_part (waits for its files)")
    timed_method(writer_module, "_write_parquet", "writer pool: parquet (summed over threads)")
    folder = Path(tempfile.mkdtemp(prefix="profile-trace-"))
    try:
        for name in args.modes:
            warm = prompts[: max(1, args.batch_tokens // args.tokens)]
            trace_prompts(loaded, warm, folder / "warm", MODES[name], max_tokens=args.tokens, progress=False,
                          batch_tokens=args.batch_tokens)
            shutil.rmtree(folder / "warm")
            TIMES.clear()
            CPU.clear()
            handles = [model.register_forward_pre_hook(pre, with_kwargs=True),
                       model.register_forward_hook(post, with_kwargs=True)]
            profiler = cProfile.Profile() if args.cprofile else None
            start = time.perf_counter()
            if profiler:
                profiler.enable()  # the main thread only: forwards, hooks, collect, submit
            summary = trace_prompts(loaded, prompts, folder / name, MODES[name], max_tokens=args.tokens,
                                    progress=False, batch_tokens=args.batch_tokens)
            sync(args.device)
            total = time.perf_counter() - start
            if profiler:
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats("workbench/", args.cprofile)  # the capture's own code
                stats.sort_stats("tottime").print_stats(args.cprofile)  # and where the time is spent, anywhere
            for h in handles:
                h.remove()
            shutil.rmtree(folder / name)
            row = {"model": args.model, "mode": name, "tokens": summary.num_tokens, "total_s": round(total, 3),
                   **{k: round(v, 3) for k, v in sorted(TIMES.items())}}
            print(json.dumps(row), flush=True)
            print(json.dumps({"thread CPU s": {k: round(v, 3) for k, v in sorted(CPU.items())}}), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
