"""Layer ablation (an INTERVENTION: the model is modified inside the probe and restored after it): replace the
output of all attention layers, all DeltaNet layers, or one layer at a time by zero or by its sequence mean, and
measure exact match on held-out passkey and associative-recall prompts (workbench/probes/layer_ablation.py).

    python probes/layer_ablation.py --out traces/long_context                # nano, CPU
    python probes/layer_ablation.py --model /models/Qwen3-Next-80B-A3B-Instruct --device-map auto --dtype bfloat16 \
        --passkey-length 32768 --recall-length 8192 --prompts 32 --batch-size 1 --out traces/long_context

Appends one run with table layer_ablation (every row labelled intervention = "ablation").
"""

from __future__ import annotations

import argparse
import sys

from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.layer_ablation import MODES, run_layer_ablation
from workbench.probes.output import table_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--passkey-length", type=int, default=1024)
    parser.add_argument("--recall-length", type=int, default=512)
    parser.add_argument("--prompts", type=int, default=8, help="held-out prompts per suite")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--no-single-layers", action="store_true", help="only all-attention / all-DeltaNet")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    loaded = load_from_arguments(args)
    suites = (("passkey", args.passkey_length), ("recall", args.recall_length))
    try:
        run_id, table = run_layer_ablation(loaded, args.out, suites, args.prompts, args.seed, tuple(args.modes),
                                           not args.no_single_layers, args.batch_size)
    except ValueError as error:  # a bad option or a prompt beyond the position limit: one line
        sys.exit(f"error: {error}")
    df = table.to_pandas().assign(mode=lambda d: d["mode"].fillna("-"))
    print(f"run {run_id} (intervention: ablation)")
    print(table_text(df.pivot_table(index=["condition"], columns=["suite", "mode"], values="exact_match",
                                    dropna=False)))


if __name__ == "__main__":
    main()
