"""Needle sweep: context length x needle depth; per layer and head, attention needle mass and DeltaNet needle
contribution at the answer, state retention of the needle, exact match (workbench/probes/needle_sweep.py).

    python probes/needle_sweep.py --out traces/long_context                  # nano, CPU: 512-8K x 5 depths
    python probes/needle_sweep.py --model /models/Qwen3-Next-80B-A3B-Instruct --device-map auto --dtype bfloat16 \
        --lengths 4096 16384 65536 131072 --prompts 4 --deltanet-path fla --out traces/long_context

Prompts are held-out nano passkey records (seed space nano-heldout). Appends one run with table needle_sweep to
--out; `workbench app OUT` draws it on the Long context page.
"""

from __future__ import annotations

import argparse
import sys

from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.needle_sweep import DEPTHS, NANO_LENGTHS, run_needle_sweep, sweep_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(NANO_LENGTHS), help="context lengths (tokens)")
    parser.add_argument("--depths", type=float, nargs="+", default=list(DEPTHS), help="needle depths in [0, 1]")
    parser.add_argument("--prompts", type=int, default=1, help="held-out prompts per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deltanet-path", default="auto", choices=["auto", "fla", "torch"])
    args = parser.parse_args()
    loaded = load_from_arguments(args)
    try:
        run_id, table = run_needle_sweep(loaded, args.out, args.lengths, args.depths, args.prompts, args.seed,
                                         args.deltanet_path)
    except ValueError as error:  # a bad option or a prompt beyond the position limit: one line
        sys.exit(f"error: {error}")
    print(f"run {run_id}: {table.num_rows} rows")
    print(sweep_report(args.out, run_id))


if __name__ == "__main__":
    main()
