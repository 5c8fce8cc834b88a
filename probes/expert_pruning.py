"""Prune what-if (an INTERVENTION): mask 10/25/50% of each MoE layer's experts, chosen by frequency, by REAP score
and at random, and measure held-out loss and exact match against the unmasked model.

    python probes/expert_pruning.py --model nano --out traces/sparsity --n 8

Saliency (selections, REAP) is captured on calibration text from held-out seed --calibration-seed; loss and exact
match are measured on held-out seed --seed (see workbench/probes/expert_pruning.py). Appends one run holding table
`expert_pruning` (every row labelled intervention = expert_mask) to --out; `workbench app OUT` draws the curves on the
Sparsity probes page. The nano's suites (workbench.nano.data.HELDOUT_SUITES) need the nano's tokenizer.
"""

from __future__ import annotations

import argparse

import pandas as pd

from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.output import table_text
from workbench.probes.expert_pruning import CRITERIA, DEFAULT_FRACTIONS, DEFAULT_SUITES, best_criterion, sweep, \
    write_pruning_run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, device_map=False)
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--suites", nargs="+", default=list(DEFAULT_SUITES))
    parser.add_argument("--n", type=int, default=8, help="prompts per suite")
    parser.add_argument("--fractions", nargs="+", type=float, default=list(DEFAULT_FRACTIONS))
    parser.add_argument("--criteria", nargs="+", default=list(CRITERIA), choices=CRITERIA)
    parser.add_argument("--seed", type=int, default=0, help="held-out seed of the evaluation (and random masks)")
    parser.add_argument("--calibration-seed", type=int, default=1)
    parser.add_argument("--calibration-tokens", type=int, default=512, help="per domain")
    parser.add_argument("--loss-tokens", type=int, default=256, help="per domain")
    args = parser.parse_args(argv)

    loaded = load_from_arguments(args)
    rows, _ = sweep(loaded, tuple(args.suites), args.n, tuple(args.fractions), tuple(args.criteria), args.seed,
                    args.calibration_seed, args.calibration_tokens, args.loss_tokens)
    run_id = write_pruning_run(loaded, rows, args.out, {
        "suites": args.suites, "n": args.n, "fractions": args.fractions, "criteria": args.criteria, "seed": args.seed,
        "calibration_seed": args.calibration_seed, "calibration_tokens": args.calibration_tokens,
        "loss_tokens": args.loss_tokens})
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index=["criterion", "fraction"], columns="suite", values="value", sort=False)
    print(table_text(table))
    print(f"best criterion by mean exact match per fraction: {best_criterion(rows)}")
    print(f"run {run_id} -> {args.out}")


if __name__ == "__main__":
    main()
