"""Who writes the answer (direct logit attribution, an observation): trace held-out passkey prompts with
`--attribution` and print the share of the answer logit per component group, the top heads and the top routed
experts (workbench/probes/attribution.py).

    python probes/attribution.py --out traces/attribution          # nano, CPU: 8 prompts of 256 tokens

Appends one traced run (tables tokens, spans, routing, logit_attribution).
"""

from __future__ import annotations

import argparse

from workbench.probes import add_model_arguments, load_from_arguments
from workbench.probes.attribution import run_attribution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_id, found = run_attribution(load_from_arguments(args), args.out, args.prompts, args.length, args.seed)
    print(f"run {run_id}: mean contribution to the answer logit per component group (logits; share of the logit)")
    print(found["groups"].round(3).to_string(index=False))
    print("top heads:")
    print(found["heads"].round(3).to_string(index=False))
    print("top routed experts:")
    print(found["experts"].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
