"""Write the shipped prompt suites under datasets/prompts/ from the nano data generator (held-out seed space).

    python probes/write_prompts.py            # datasets/prompts/heldout/<suite>.jsonl (10 each) + demo.jsonl
Deterministic: the same seed writes byte-identical files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.nano.data import heldout_records, write_probe_prompts

DEMO_SUITES = ("passkey_1024", "assoc_recall_8pairs_512", "copy_16", "arithmetic_add", "code_256", "prose_512")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("datasets/prompts"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=10, help="prompts per held-out suite")
    parser.add_argument("--demo-per-suite", type=int, default=2)
    args = parser.parse_args()
    write_probe_prompts(args.out / "heldout", args.seed, args.n)
    demo = [record for suite in DEMO_SUITES for record in heldout_records(suite, args.seed, args.demo_per_suite)]
    (args.out / "demo.jsonl").write_text("".join(json.dumps(record) + "\n" for record in demo))
    print(f"wrote {args.out}/heldout/*.jsonl ({args.n} per suite) and {args.out}/demo.jsonl ({len(demo)} prompts)")


if __name__ == "__main__":
    main()
