"""State capacity: multi-query associative recall with 1...64 planted pairs; per DeltaNet layer, the retention of
each planted key as more keys are written after it (workbench/probes/state_capacity.py).

    python probes/state_capacity.py --out traces/long_context                # nano, CPU
    python probes/state_capacity.py --model /models/Qwen3-Next-80B-A3B-Instruct --device-map auto --dtype bfloat16 \
        --pairs 1 4 16 64 128 256 --contexts 0 8192 32768 --prompts 4 --deltanet-path fla --out traces/long_context

Prompts are held-out nano records (seed space nano-heldout). Appends one run with table state_capacity.
"""

from __future__ import annotations

import argparse
import sys

from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.output import table_text
from workbench.probes.state_capacity import NANO_CONTEXTS, NANO_PAIRS, run_state_capacity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--pairs", type=int, nargs="+", default=list(NANO_PAIRS), help="pair counts")
    parser.add_argument("--contexts", type=int, nargs="+", default=list(NANO_CONTEXTS),
                        help="prompt lengths; 0 = pairs back to back")
    parser.add_argument("--prompts", type=int, default=2, help="held-out prompts per cell")
    parser.add_argument("--queries", type=int, default=8, help="queries per prompt (at most the pairs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deltanet-path", default="auto", choices=["auto", "fla", "torch"])
    args = parser.parse_args()
    loaded = load_from_arguments(args)
    try:
        run_id, table = run_state_capacity(loaded, args.out, args.pairs, args.contexts, args.prompts, args.queries,
                                           args.seed, args.deltanet_path)
    except ValueError as error:  # a bad option or a prompt beyond the position limit: one line
        sys.exit(f"error: {error}")
    df = table.to_pandas()
    print(f"run {run_id}: {len(df)} rows")
    print("exact-match accuracy (rows: context length, columns: pairs planted)")
    print(table_text(df.groupby(["context_length", "pairs"]).accuracy.first().unstack()))
    print("retention norm ratio (rows: layer, columns: pairs planted; mean over contexts and planted pairs)")
    print(table_text(df.groupby(["layer", "pairs"]).retention_ratio.mean().unstack()))


if __name__ == "__main__":
    main()
