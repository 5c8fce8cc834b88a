"""Routing specialisation: per MoE layer, each label's expert load, the Jensen-Shannon divergence between labels
against the same model at a seeded random init, each label's most over-represented experts, and vocabulary
specialisation (token ids whose top-1 expert is nearly fixed).

    python probes/routing_specialization.py --model nano --out traces/sparsity            # the six nano domains
    python probes/routing_specialization.py --model DIR --prompts labelled.jsonl --out traces/spec

Appends three runs to --out: the routing of the model, the routing of its random init, and the probe's tables
(label_divergence, label_experts, vocab_specialisation; column `model`). `workbench app OUT` shows them on the
Sparsity probes page (and each routing run on Routing & sparsity).
"""

from __future__ import annotations

import argparse

from workbench.analysis.balance import MIN_LIFT_SUPPORT
from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.output import table_text
from workbench.probes.routing_specialization import nano_domain_prompts, run_specialization
from workbench.inputs.prompts import read_prompts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, device_map=False)
    parser.add_argument("--prompts", help="JSONL prompts with a label (default: the nano's six held-out domains)")
    parser.add_argument("--n", type=int, default=4, help="prompts per nano domain (without --prompts)")
    parser.add_argument("--seed", type=int, default=0, help="held-out seed of the nano prompts and of the random init")
    parser.add_argument("--top", type=int, default=5, help="over-represented experts kept per label and layer")
    parser.add_argument("--min-count", type=int, default=5, help="occurrences a token needs for vocab specialisation")
    parser.add_argument("--min-support", type=float, default=MIN_LIFT_SUPPORT,
                        help="share of a label's top-k slots an expert needs before its lift is ranked (default 0.01)")
    parser.add_argument("--out", required=True, help="trace folder to append the runs to")
    args = parser.parse_args(argv)

    prompts = read_prompts(args.prompts) if args.prompts else nano_domain_prompts(args.seed, args.n)
    loaded = load_from_arguments(args)
    if not 0 <= args.min_support <= 1:
        parser.error(f"--min-support is a share in [0, 1], got {args.min_support}")
    result = run_specialization(loaded, prompts, args.out, seed=args.seed, top=args.top, min_count=args.min_count,
                                min_fraction=args.min_support)
    js = result.mean_js()
    print("mean label JS (bits, over layers and label pairs): "
          + ", ".join(f"{model} {value:.3f}" for model, value in js.items())
          + f"; ratio {js['trained'] / max(js['random_init'], 1e-12):.2f}x")
    per_layer = result.label_divergence.groupby(["model", "layer"])["js_bits"].mean().unstack("model")
    print(table_text(per_layer))
    vocab = result.vocab_specialisation
    fixed = vocab[vocab.top_share >= 0.9].groupby("model").size() / vocab.groupby("model").size()
    print("share of tokens (seen >= min-count times) whose top-1 expert is fixed in >= 90% of occurrences: "
          + ", ".join(f"{m} {v:.2f}" for m, v in fixed.items()))
    print(f"runs {result.runs} and probe run {result.probe_run} -> {args.out}")


if __name__ == "__main__":
    main()
