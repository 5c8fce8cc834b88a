"""The full Qwen3-Next-80B-A3B geometry, random init, across GPUs: plain vs traced (routing + DeltaNet + attention)
forward time, their ratio, peak memory per device, and logits unchanged with capture on (the two-GPU issue).

The release config's geometry: 48 layers (DeltaNet and gated attention 3:1), hidden 2048, 512 experts top-10 plus a
shared expert, DeltaNet 16 key / 32 value heads of 128, attention 16 / 2 heads of 256, vocabulary 151,936: about
80B parameters, 160 GB in bf16, more than one H200 holds. The model is created on the meta device and each part
filled on its own GPU (tests/support/placement.py: no host copy), layers split evenly over --devices.
Run on two GPUs:  python bench/bench_80b_geometry.py --devices cuda:0 cuda:1 --tokens 8192 32768
On the CPU:       .venv/bin/python bench/bench_80b_geometry.py --dims tiny --layers 8 --vocab 259 --devices cpu cpu \
                      --tokens 64 --dtype float32 --reps 1
Both forwards keep the logits of the last --keep positions only (the LM head over every position would add the same
32K x 151,936 product to both sides); those logits must be torch.equal. Plain and traced alternate; medians of
--reps after one warm-up each.
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
from support.placement import random_model_on_devices  # noqa: E402
from support.toy import REAL_80B_DIMS, TINY_DIMS, qwen3_next_config  # noqa: E402

from workbench.capture import CaptureSettings, capture  # noqa: E402

RELEASE_VOCAB = 151_936


def sync(devices: list[str]) -> None:
    for device in {torch.device(d) for d in devices}:
        if device.type == "cuda":
            torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=48)
    parser.add_argument("--dims", choices=["real", "tiny"], default="real")
    parser.add_argument("--vocab", type=int, default=RELEASE_VOCAB)
    parser.add_argument("--devices", nargs="+",
                        default=[f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"])
    parser.add_argument("--tokens", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", type=int, default=64, help="logits kept (and compared) at the last N positions")
    args = parser.parse_args()

    dims = dict(REAL_80B_DIMS if args.dims == "real" else TINY_DIMS, intermediate_size=5120 if args.dims == "real"
                else TINY_DIMS["intermediate_size"])
    config = qwen3_next_config(args.layers, args.vocab, dims=dims, tie_word_embeddings=False)
    start = time.perf_counter()
    torch.manual_seed(0)
    model, device_map = random_model_on_devices(config, args.devices, getattr(torch, args.dtype))
    sync(args.devices)
    built_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    settings = CaptureSettings(deltanet=True, attention=True)
    first = args.devices[0]

    def plain(ids):
        return model(input_ids=ids, use_cache=False, logits_to_keep=args.keep).logits

    def traced(ids):
        with capture(model, settings) as run:
            logits = model(input_ids=ids, use_cache=False, logits_to_keep=args.keep).logits
            run.collect()  # every record on the host, inside the timed region
        return logits

    def timed(fn, ids):
        sync(args.devices)
        begin = time.perf_counter()
        out = fn(ids)
        sync(args.devices)
        return out, time.perf_counter() - begin

    for tokens in args.tokens:
        ids = torch.randint(0, args.vocab, (1, tokens), device=first)
        with torch.inference_mode():
            reference, _ = timed(plain, ids)  # warm-up of both
            observed, _ = timed(traced, ids)
            equal = torch.equal(reference, observed)
            for device in args.devices:
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats(device)
            plain_s, traced_s = [], []
            for _ in range(args.reps):
                plain_s.append(timed(plain, ids)[1])
                traced_s.append(timed(traced, ids)[1])
        row = {"devices": args.devices, "layers": args.layers, "dims": args.dims, "params": params,
               "dtype": args.dtype, "tokens": tokens, "built_s": round(built_s, 1),
               "layers_per_device": {d: sum(1 for k, v in device_map.items() if k.startswith("model.layers.")
                                            and v == d) for d in dict.fromkeys(args.devices)},
               "plain_ms": round(1e3 * statistics.median(plain_s), 1),
               "traced_ms": round(1e3 * statistics.median(traced_s), 1), "logits_equal": equal}
        row["ratio"] = round(row["traced_ms"] / row["plain_ms"], 3)
        row["peak_gb"] = {d: round(torch.cuda.max_memory_allocated(d) / 1e9, 1)
                          for d in dict.fromkeys(args.devices) if d.startswith("cuda")}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
