"""MTP draft acceptance: how often the checkpoint's multi-token-prediction head drafts the token the trunk itself
would produce next-but-one, by prompt label (domain), position and context length; and its routing overlap.

    python probes/mtp_acceptance.py                                    # nano, 4 held-out prompts per domain, CPU
    python probes/mtp_acceptance.py --model /models/Qwen3-Next-80B-A3B-Instruct --device-map auto \
        --dtype bfloat16 --prompts my.jsonl --out traces/mtp

Teacher-forced (workbench/mtp/acceptance.py): row t drafts token t+2 from the trunk's final hidden state at t and
token t+1; accepted = the draft equals the trunk's greedy token there. Appends one run (tables tokens, routing with
the MTP layer as layer num_hidden_layers, mtp) to --out; `workbench app OUT` shows it on the Multi-token prediction
page. A checkpoint without `mtp.*` tensors is refused in one line.
"""

from __future__ import annotations

import argparse
import sys

from workbench.capture import CaptureError
from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.mtp_acceptance import acceptance_report, nano_domain_prompts, trace_mtp
from workbench.probes.output import table_text
from workbench.inputs.prompts import read_prompts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--prompts", help="JSONL prompts (id, text, label); default: nano held-out records per domain")
    parser.add_argument("--n", type=int, default=4, help="records per nano domain (without --prompts)")
    parser.add_argument("--seed", type=int, default=0, help="held-out seed of the nano records")
    parser.add_argument("--out", default="traces/mtp")
    parser.add_argument("--max-tokens", type=int, default=None)
    args = parser.parse_args(argv)

    prompts = read_prompts(args.prompts) if args.prompts else nano_domain_prompts(args.seed, args.n)
    loaded = load_from_arguments(args)
    try:
        summary = trace_mtp(loaded, prompts, args.out, max_tokens=args.max_tokens)
    except CaptureError as error:
        sys.exit(f"error: {error}")
    report = acceptance_report(args.out, summary.run_id, loaded.model.config.num_hidden_layers)
    print(f"run {summary.run_id}: {summary.num_sequences} sequences, {summary.num_tokens} tokens -> {args.out}")
    for name, frame in report.items():
        print(f"\n{name}\n{table_text(frame, index=False)}")


if __name__ == "__main__":
    main()
