"""Expert saliency overhead: forward with expert-saliency capture / plain forward, for each path.

Default is the 4-layer slice of Qwen3-Next-80B-A3B at its real per-layer dimensions (512 experts top-10) at 32K
tokens (bench_capture_overhead.build_slice). Paths (capture/saliency/): "tap" reads each routed row's expert output
norm inside the model's own grouped_mm forward (no expert runs twice); "grouped" recomputes each chosen expert's
output with the experts module's own implementation (grouped_mm) on the N*k routed rows; "loop" with its eager
per-expert loop. All leave the model's forward as it is (checked here: logits torch.equal). With both tap and
grouped: `tap_vs_grouped_max_rel_diff`, the largest relative difference of the per-expert sums (gate, norm, REAP)
between them, and counts equal (a correctness check of the tap where it counts: the GPU's grouped_mm). Also timed:
the whole model switched to the eager experts implementation (the slow path the recompute avoids), without capture.
Run on the GPU:  python bench/bench_expert_saliency.py --layers 4 --tokens 32768 --device cuda
On the CPU:      .venv/bin/python bench/bench_expert_saliency.py --dims tiny --tokens 1024 --device cpu --dtype float32
Plain and captured forwards alternate; each figure is the median of --reps timed calls after warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_capture_overhead import _timed, add_slice_arguments, build_slice, kernel_path  # noqa: E402

from workbench.capture import CaptureSettings, capture  # noqa: E402


def max_rel_diff(record, reference) -> float:
    """Largest |a - b| / |b| over the per-expert sums (gate, norm, REAP) of the experts chosen; counts must match."""
    assert torch.equal(record.count, reference.count), "tap and grouped counted different selections"
    chosen = reference.count > 0
    return max(float(((getattr(record, name) - getattr(reference, name)).abs()[chosen]
                      / getattr(reference, name).abs()[chosen].clamp_min(1e-30)).max())
               for name in ("gate_sum", "norm_sum", "reap_sum"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slice_arguments(parser)
    parser.add_argument("--paths", nargs="+", default=["tap", "grouped", "loop"],
                        choices=["auto", "tap", "grouped", "loop"])
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model, config = build_slice(args, device, dtype)
    input_ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)

    def plain():
        return model(input_ids=input_ids, use_cache=False).logits

    def captured(path):
        def run_once():  # registering and removing the hooks and the copy off the device are inside the timed region
            with capture(model, CaptureSettings(routing=False, expert_saliency=True, expert_saliency_path=path)) as run:
                logits = model(input_ids=input_ids, use_cache=False).logits
                record = run.collect("expert_saliency")
            return logits, record
        return run_once

    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "dims": args.dims,
              "layers": args.layers, "tokens": args.tokens, "dtype": args.dtype,
              "experts_implementation": config._experts_implementation, "deltanet_kernel": kernel_path()}
    with torch.inference_mode():
        reference, records = plain(), {}
        for path in args.paths:
            logits, records[path] = captured(path)()
            assert torch.equal(logits, reference), f"{path}: saliency capture changed the logits"
            result[f"{path}_ran"] = records[path].path
        if "tap" in records and "grouped" in records:
            result["tap_vs_grouped_max_rel_diff"] = max_rel_diff(records["tap"], records["grouped"])
        times = {"plain": [], **{path: [] for path in args.paths}}
        for _ in range(args.reps):
            times["plain"].append(_timed(plain, device))
            for path in args.paths:
                times[path].append(_timed(captured(path), device))
        model.set_experts_implementation("eager")
        plain()  # warm-up
        eager = [_timed(plain, device) for _ in range(max(1, args.reps // 2))]
    plain_ms = 1e3 * statistics.median(times["plain"])
    result["plain_ms"] = round(plain_ms, 2)
    for path in args.paths:
        ms = 1e3 * statistics.median(times[path])
        result[f"{path}_ms"], result[f"{path}_ratio"] = round(ms, 2), round(ms / plain_ms, 3)
    result["eager_model_ms"] = round(1e3 * statistics.median(eager), 2)
    result["eager_model_ratio"] = round(result["eager_model_ms"] / plain_ms, 3)
    if device.type == "cuda":
        result["peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
