"""Decoding under capture, and self-speculative decoding with the MTP head, against plain greedy decoding.

    .venv/bin/python bench/bench_generate.py --model nano --new-tokens 64 --reps 3          # CPU
    python bench/bench_generate.py --model nano --device cuda --new-tokens 256 --reps 5   # GPU

Per repetition (all greedy, batch 1, one prompt of --prompt-tokens tokens, --new-tokens new tokens):
  plain        model.generate() without capture;
  routing      the same under routing capture;  all: routing + DeltaNet + attention (every decoded token analysed);
  speculative  `--speculative mtp` decoding (generation/speculative.py) with --draft-tokens drafts per round,
               no capture besides the drafts' routing.
Prints each repetition's tokens/s, the medians, the capture ratios (seconds per new token, traced / plain; the
prefill is included in both) and the speculative speed-up, the share of drafts kept per draft index, and whether
speculative output equals plain greedy output token for token (it must).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from workbench.capture import CaptureSettings, capture
from workbench.generation import GenerationSettings, generate
from workbench.generation.speculative import speculative_generate
from workbench.loading import load_model


def _timed(function, device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nano", help="'nano' or a checkpoint folder with mtp.* tensors")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--draft-tokens", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    text = "def running_total(values):\n    total = 0\n    for value in values:\n" * 64
    ids = torch.tensor([tokenizer.encode(text)[: args.prompt_tokens]], device=device)
    plain_settings = GenerationSettings(max_new_tokens=args.new_tokens)
    spec_settings = GenerationSettings(max_new_tokens=args.new_tokens, speculative="mtp",
                                       draft_tokens=args.draft_tokens)
    kinds = {"routing": CaptureSettings(), "all": CaptureSettings(deltanet=True, attention=True, attention_stride=1)}
    times: dict[str, list[float]] = {"plain": [], "routing": [], "all": [], "speculative": []}
    same, kept = True, {}
    generate(model, tokenizer, ids, plain_settings, feed_last=False)  # warm-up
    for rep in range(args.reps):
        seconds, plain = _timed(lambda: generate(model, tokenizer, ids, plain_settings, feed_last=False), device)
        times["plain"].append(seconds)
        for name, settings in kinds.items():
            with capture(model, settings, loaded.adapter) as run:
                seconds, _ = _timed(lambda: generate(model, tokenizer, ids, plain_settings, feed_last=False), device)
                run.collect()
            times[name].append(seconds)
        with capture(model, CaptureSettings(), loaded.adapter) as run:
            seconds, (spec, tables) = _timed(lambda: speculative_generate(model, tokenizer, ids, spec_settings, run,
                                                                          "bench"), device)
        times["speculative"].append(seconds)
        same &= spec.token_ids.tolist() == plain.token_ids.tolist()
        drafts = tables["drafts"].to_pandas()
        kept = drafts.groupby("draft").accepted.mean().round(4).to_dict()
        print(f"rep {rep}: " + ", ".join(f"{k} {args.new_tokens / v[-1]:.1f} tok/s" for k, v in times.items()),
              flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": args.model, "prompt_tokens": ids.shape[1], "new_tokens": args.new_tokens,
        "draft_tokens": args.draft_tokens,
        "tokens_per_s": {k: round(args.new_tokens / v, 2) for k, v in median.items()},
        "ratio_routing": round(median["routing"] / median["plain"], 3),
        "ratio_all": round(median["all"] / median["plain"], 3),
        "speculative_speedup": round(median["plain"] / median["speculative"], 3),
        "kept_by_draft_index": {int(k): v for k, v in kept.items()},
        "speculative_equals_greedy": same,
    }
    print(json.dumps(result, indent=1))
    if not same:
        raise SystemExit("speculative output differs from plain greedy decoding")
    return result


if __name__ == "__main__":
    main()
