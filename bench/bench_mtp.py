"""MTP analysis cost: trunk forward + MTP head + acceptance statistics, as a ratio to the plain trunk forward.

The trunk is the 4-layer real-dimension slice of Qwen3-Next-80B-A3B (bench_capture_overhead.build_slice) with the
release's 151,936-entry vocabulary (the MTP head has its own lm_head pass, so the vocabulary is part of its cost);
the MTP head is one real-dimension full-attention decoder layer with its 512-expert MoE, random init.
    python bench/bench_mtp.py --tokens 32768 --device cuda
    .venv/bin/python bench/bench_mtp.py --dims tiny --tokens 1024 --vocab 1024 --device cpu --reps 3
Plain and analysed forwards alternate; each figure is the median of --reps timed calls after warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from bench_capture_overhead import _timed, add_slice_arguments, build_slice

from workbench.mtp import MTPHead, mtp_logits
from workbench.mtp.acceptance import acceptance_tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slice_arguments(parser)
    parser.set_defaults(vocab=151936)
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model, config = build_slice(args, device, dtype)
    torch.manual_seed(1)
    head = MTPHead(model)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.02)
    head = head.to(device=device, dtype=dtype).eval()
    ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)

    def plain():
        model(input_ids=ids, use_cache=False)

    def analysed():  # the trunk's final-normed hidden taken by a hook, as the capture option does
        hidden = []
        hook = model.get_decoder().norm.register_forward_hook(lambda _m, _i, out: hidden.append(out))
        try:
            trunk = model(input_ids=ids, use_cache=False).logits
        finally:
            hook.remove()
        drafts = mtp_logits(model, head, ids, hidden[0])
        stats = acceptance_tensors(ids[0], trunk[0], drafts[0])
        return float(stats["accepted"].float().mean())  # one host sync, as a table writer would do

    plain_times, analysed_times = [], []
    with torch.inference_mode():
        for _ in range(2):
            plain()
            analysed()
        for _ in range(args.reps):
            plain_times.append(_timed(plain, device))
            analysed_times.append(_timed(analysed, device))
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dims": args.dims, "layers": args.layers, "tokens": args.tokens, "vocab": args.vocab, "dtype": args.dtype,
        "trunk_params": sum(p.numel() for p in model.parameters()),
        "mtp_params": sum(p.numel() for p in head.parameters()),
        "plain_ms": 1e3 * statistics.median(plain_times),
        "analysed_ms": 1e3 * statistics.median(analysed_times),
    }
    result["ratio"] = result["analysed_ms"] / result["plain_ms"]
    if device.type == "cuda":
        result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    print(json.dumps(result))
    print(f"MTP analysis: {result['ratio']:.3f}x the plain trunk forward "
          f"({result['plain_ms']:.1f} ms -> {result['analysed_ms']:.1f} ms)")


if __name__ == "__main__":
    main()
