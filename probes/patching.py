"""Activation patching (an INTERVENTION: the corrupted prompt runs with one site taken from the clean prompt; the
model is restored after each patch): which layers, heads and DeltaNet states carry a pass key to the answer
(workbench/probes/patching.py).

    python probes/patching.py --out traces/patching                    # nano, CPU: 4 pairs of 256 tokens
    python probes/patching.py --model /models/Qwen3-Next-80B-A3B-Instruct --device-map auto --dtype bfloat16 \\
        --length 4096 --pairs 8 --no-heads --out traces/patching

Appends one run with table patching (every row labelled intervention = "activation_patching") and prints the mean
recovery per site and range, and how many forwards ran.
"""

from __future__ import annotations

import argparse

from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.patching import run_patching


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--pairs", type=int, default=4, help="clean / corrupted passkey pairs")
    parser.add_argument("--length", type=int, default=256, help="tokens per passkey prompt")
    parser.add_argument("--no-heads", action="store_true", help="patch whole mixers only, not attention heads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    loaded = load_from_arguments(args)
    run_id, table, forwards = run_patching(loaded, args.out, args.pairs, args.length, args.seed, not args.no_heads)
    frame = table.to_pandas()
    frame = frame[frame.site != "head"]
    print(f"run {run_id} (intervention: activation patching); forwards: {forwards}")
    print(frame.pivot_table(index=["site", "layer"], columns="range", values="recovery").round(3).to_string())


if __name__ == "__main__":
    main()
