"""DeltaNet state capture overhead: (routing + DeltaNet state capture) forward time / plain forward time.

Default: a 4-layer slice of Qwen3-Next-80B-A3B at its real per-layer dimensions (3 Gated DeltaNet + 1 gated
attention; DeltaNet 16 key / 32 value heads of 128; 512 experts top-10), 32,768 tokens, bf16. Target on an
H200: <= 1.25x.
Run on the GPU:  python bench/bench_deltanet_capture.py --tokens 32768 --device cuda
On the CPU:      .venv/bin/python bench/bench_deltanet_capture.py --dims tiny --tokens 2048 --device cpu --reps 3

Which path computes the per-token state norms is printed ("deltanet_path_ran"):
  fla   - prefill on CUDA with fla importable: the chunk-start states h and corrected values v_new that the
          model's own fla kernel computes are taken from its recursion (`chunk_gated_delta_rule_fwd_h`, wrapped
          for the capture), then every per-token norm is a batched matmul over all chunks at once
          (`state_norms_from_chunk_states`); no second recursion, no Python loop over chunks. "fla_unavailable"
          says why it did not run; "fla-recompute" means the model's kernel did not run fla's recursion.
  torch - `chunked_state_stats`: a Python loop over 64-token chunks (several kernels each). The CPU path:
          expect several times the forward at 32K tokens on a GPU.
--path torch forces the loop. On CUDA the bench first compares the two paths' per-head norms on the first
--check-tokens tokens and prints the largest norm-relative difference ("paths_max_rel_diff"; in a bf16 model the
fla path reads the bf16 states the model stores, the torch path recomputes them in fp32 from the same inputs).
Plain and traced forwards alternate; each figure is the median of --reps timed calls after warm-up
(registering and removing hooks and patches, and copying the results to the host, are inside the timed region).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from bench_capture_overhead import _timed, add_slice_arguments, build_slice, kernel_path
from workbench.capture import CaptureSettings, capture
from workbench.ops.state_norms.fla_backend import fla_for


def traced_forward(model, input_ids, settings, pairs):
    with capture(model, settings) as run:
        if pairs is not None:
            run.recorder("deltanet").set_recall_pairs(pairs)
        model(input_ids=input_ids, use_cache=False)
        if "routing" in settings:
            run.collect("routing")
        return run.collect("deltanet")


def compare_paths(model, input_ids) -> float:
    """Largest |fla - torch| / max|torch| over the per-head state norms of every DeltaNet layer."""
    norms = {}
    for path in ("torch", "auto"):
        settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head", deltanet_path=path)
        norms[path] = traced_forward(model, input_ids, settings, None).head_state_norm
    return ((norms["auto"] - norms["torch"]).abs().max() / norms["torch"].abs().max()).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slice_arguments(parser)
    parser.add_argument("--path", choices=["auto", "fla", "torch"], default="auto")
    parser.add_argument("--heads", choices=["aggregate", "per_head"], default="aggregate")
    parser.add_argument("--head-stride", type=int, default=0)
    parser.add_argument("--recall", action="store_true", help="plant one recall pair at tokens/4")
    parser.add_argument("--snapshots", type=int, nargs="*", default=[], help="snapshot positions, e.g. -1")
    parser.add_argument("--check-tokens", type=int, default=4096)
    args = parser.parse_args()

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model, config = build_slice(args, device, dtype)
    input_ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)
    settings = CaptureSettings(deltanet=True, deltanet_path=args.path, deltanet_heads=args.heads,
                               deltanet_head_stride=args.head_stride, state_snapshots=tuple(args.snapshots))
    pairs = [[args.tokens // 4, args.tokens // 4]] if args.recall else None
    fla_kernel, fla_detail = fla_for(device)

    def plain():
        model(input_ids=input_ids, use_cache=False)

    ran = {}

    def traced():
        ran["path"] = traced_forward(model, input_ids, settings, pairs).path

    plain_times, traced_times = [], []
    with torch.inference_mode():
        paths_diff = compare_paths(model, input_ids[:, : args.check_tokens]) if fla_kernel is not None else None
        for _ in range(2):  # warm-up of both paths
            plain()
            traced()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.reps):
            plain_times.append(_timed(plain, device))
            traced_times.append(_timed(traced, device))
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dims": args.dims,
        "layers": args.layers,
        "layer_types": config.layer_types,
        "tokens": args.tokens,
        "dtype": args.dtype,
        "deltanet_kernel": kernel_path(),
        "settings": settings.to_dict(),
        "recall_pairs": pairs,
        "deltanet_path_ran": ran["path"],
        "fla_unavailable": None if fla_kernel is not None else fla_detail,
        "fla_gate_scale": fla_detail if fla_kernel is not None else None,
        "paths_max_rel_diff": paths_diff,
        "plain_ms": 1e3 * statistics.median(plain_times),
        "traced_ms": 1e3 * statistics.median(traced_times),
    }
    result["ratio"] = result["traced_ms"] / result["plain_ms"]
    if device.type == "cuda":
        result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    print(json.dumps(result))
    print(f"routing + DeltaNet state capture ({ran['path']} path): {result['ratio']:.3f}x "
          f"({result['plain_ms']:.1f} ms -> {result['traced_ms']:.1f} ms); target <= 1.25x on an H200")


if __name__ == "__main__":
    main()
