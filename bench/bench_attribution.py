"""Direct logit attribution of one answer position over all layers, heads and chosen experts, as a ratio to the plain
forward (issue 25: <= 1.5x on the 4-layer real-dimension slice at 32K tokens, GPU).

    python bench/bench_attribution.py --tokens 32768 --device cuda
    .venv/bin/python bench/bench_attribution.py --dims tiny --tokens 1024 --device cpu --dtype float32 --reps 3

The slice is bench_capture_overhead.build_slice (3 Gated DeltaNet + 1 gated attention layer at the 80B's per-layer
dimensions, 512 experts top-10 + shared). Attributed = enter capture(attribution=True, routing off) with the target
id at the last position, forward, collect (the components are computed at collect), exit; plain and attributed
forwards alternate, medians of --reps. Also checks completeness: the components sum to the model's logit.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch
from bench_capture_overhead import _timed, add_slice_arguments, build_slice

from workbench.adapters import adapter_for_config
from workbench.capture import CaptureSettings, SequenceInfo, capture


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slice_arguments(parser)
    args = parser.parse_args(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model, config = build_slice(args, device, dtype)
    adapter = adapter_for_config(model.config)
    ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)
    settings = CaptureSettings(routing=False, attribution=True, attribution_target_id=1)
    records = []

    @torch.no_grad()
    def plain():
        model(input_ids=ids, use_cache=False)

    @torch.no_grad()
    def attributed():
        with capture(model, settings, adapter) as run:
            run.begin_sequence(SequenceInfo("bench", args.tokens))
            model(input_ids=ids, use_cache=False)
            records.append(run.collect("attribution"))

    plain(), attributed()  # warm-up
    times = {"plain": [], "attributed": []}
    for _ in range(args.reps):
        times["plain"].append(_timed(plain, device))
        times["attributed"].append(_timed(attributed, device))
    median = {k: statistics.median(v) for k, v in times.items()}
    record = records[-1]
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "tokens": args.tokens, "layers": args.layers, "dims": args.dims, "dtype": args.dtype,
              "plain_ms": round(1e3 * median["plain"], 2), "attributed_ms": round(1e3 * median["attributed"], 2),
              "ratio": round(median["attributed"] / median["plain"], 3), "components": len(record.component),
              "completeness_abs_error": float(np.abs(record.totals() - record.model_logit).max()),
              "peak_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if device.type == "cuda" else None}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
