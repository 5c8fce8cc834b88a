"""Corpus throughput: traced tokens/s (`trace_prompts`, Parquet written) against a plain batched forward of the
same batches (tokenise + pad + forward, no hooks), for routing only and for routing + DeltaNet + attention.

Targets (issue 14, H200): traced >= 0.9x plain for routing, >= 0.6x with routing + DeltaNet + attention.
  nano, 300 prompts x 2,048 tokens:
    python bench/bench_corpus_throughput.py --model nano --prompts 300 --tokens 2048 --batch-tokens 65536 --device cuda
  4-layer slice at real 80B per-layer dims, 32 prompts x 8K:
    python bench/bench_corpus_throughput.py --model slice --prompts 32 --tokens 8192 --batch-tokens 65536 --device cuda
  CPU check at tiny sizes:
    .venv/bin/python bench/bench_corpus_throughput.py --model nano --prompts 8 --tokens 256 --batch-tokens 1024
First one plain pass over the whole corpus warms every batch shape (fla's Triton kernels autotune per shape: a
shape first met inside a timed pass cost the 2026-12-01 nano rows a 3.7x slower "plain" in one mode), then per mode
a traced warm-up on the first batch, then plain and traced alternate --reps times; medians printed (and every
repetition's rate: the plain rate of the nano, a CPU-bound loop, moves between runs on a shared host).
The corpus is random vocabulary words (nano: word-level tokenizer) or random bytes (slice: byte tokenizer), cut to
exactly --tokens tokens per prompt (--max-tokens), so every prompt has the same length as in the issue's corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers: tests/support/

from workbench.capture import CaptureSettings  # noqa: E402
from workbench.inputs.prompts import Prompt  # noqa: E402
from workbench.tracing import batches, padded_ids, trace_prompts  # noqa: E402

MODES = {"routing": CaptureSettings(),
         "routing+deltanet+attention": CaptureSettings(deltanet=True, attention=True)}


def load(args):
    """LoadedModel of the nano checkpoint or of the random-init real-dim slice (byte tokenizer)."""
    if args.model == "nano":
        from workbench.loading import load_model

        return load_model("nano", dtype=args.dtype, device=args.device)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the slice builder of bench_capture_overhead.py
    from bench_capture_overhead import build_slice
    from support.toy import byte_tokenizer

    from workbench.adapters import get_adapter
    from workbench.loading import LoadedModel

    args.vocab = 1024
    model, _ = build_slice(args, torch.device(args.device), getattr(torch, args.dtype))
    return LoadedModel(model, byte_tokenizer(), get_adapter("Qwen3NextForCausalLM"), "slice", "memory", None)


def corpus(tokenizer, count: int, tokens: int, seed: int = 0) -> list[Prompt]:
    rng = random.Random(seed)
    if tokenizer.__class__.__name__ == "PreTrainedTokenizerFast" and len(tokenizer) < 300:  # byte tokenizer
        alphabet = "abcdefghijklmnopqrstuvwxyz 0123456789.,;:"
        return [Prompt(f"p{i}", "".join(rng.choice(alphabet) for _ in range(tokens + 8))) for i in range(count)]
    words = [w for w in tokenizer.get_vocab() if w.isalpha()]
    return [Prompt(f"p{i}", " ".join(rng.choice(words) for _ in range(tokens + 8))) for i in range(count)]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def plain_pass(loaded, prompts, args) -> int:
    """Tokenise, pad and forward the batches tracing would run (tracing.batches and padded_ids: the same windows,
    plan and input ids), on one thread; returns the real tokens."""
    device = next(loaded.model.parameters()).device
    tokens = 0
    for rows in batches(loaded.tokenizer, prompts, args.tokens, args.batch_tokens):
        loaded.model(input_ids=padded_ids(rows, 0).to(device), use_cache=False)
        tokens += sum(len(e.token_ids) for e in rows)
    sync(args.device)
    return tokens


def traced_pass(loaded, prompts, args, settings, folder: Path) -> int:
    summary = trace_prompts(loaded, prompts, folder, settings, max_tokens=args.tokens, progress=False,
                            batch_tokens=args.batch_tokens)
    sync(args.device)
    shutil.rmtree(folder)
    return summary.num_tokens


def timed(fn):
    start = time.perf_counter()
    tokens = fn()
    return tokens, time.perf_counter() - start


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and batch-shape options of this bench, profile_trace.py and profile_forward_captures.py."""
    parser.add_argument("--model", choices=["nano", "slice"], default="nano")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--batch-tokens", type=int, default=65536)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dims", choices=["real", "tiny"], default="real")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for the whole run (seconds; Python's default is 0.005)")


def add_corpus_arguments(parser: argparse.ArgumentParser, prompts: int) -> None:
    """The model, corpus and capture-mode options of this bench and of profile_trace.py."""
    add_model_arguments(parser)
    parser.add_argument("--prompts", type=int, default=prompts)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and apply --switch-interval."""
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser, prompts=300)
    parser.add_argument("--reps", type=int, default=1)
    args = parse(parser)

    loaded = load(args)
    prompts = corpus(loaded.tokenizer, args.prompts, args.tokens)
    folder = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    rows = []
    try:
        warm = prompts[: max(1, args.batch_tokens // args.tokens)]
        plain_pass(loaded, prompts, args)  # every batch shape once (kernel autotuning), untimed
        for name in args.modes:
            settings = MODES[name]
            plain_pass(loaded, warm, args)
            traced_pass(loaded, warm, args, settings, folder / "warm")
            plain_s, traced_s = [], []
            for rep in range(args.reps):
                tokens, seconds = timed(lambda: plain_pass(loaded, prompts, args))
                plain_s.append(seconds)
                traced_tokens, seconds = timed(lambda: traced_pass(loaded, prompts, args, settings, folder / f"t{rep}"))
                traced_s.append(seconds)
                assert traced_tokens == tokens
            plain, traced = statistics.median(plain_s), statistics.median(traced_s)
            row = {"model": args.model, "mode": name, "device": args.device, "dtype": args.dtype,
                   "prompts": args.prompts, "tokens_per_prompt": args.tokens, "batch_tokens": args.batch_tokens,
                   "tokens": tokens, "plain_s": round(plain, 3), "traced_s": round(traced, 3),
                   "plain_tok_s": round(tokens / plain), "traced_tok_s": round(tokens / traced),
                   "ratio": round(plain / traced, 3),
                   "plain_tok_s_each": [round(tokens / t) for t in plain_s],
                   "traced_tok_s_each": [round(tokens / t) for t in traced_s]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for row in rows:
        print(f"{row['model']} {row['mode']}: traced {row['traced_tok_s']:,} tok/s"
              f" vs plain {row['plain_tok_s']:,} tok/s"
              f" = {row['ratio']:.3f}x of the plain batched forward ({row['tokens']:,} tokens)")


if __name__ == "__main__":
    main()
