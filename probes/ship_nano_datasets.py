"""Rebuild datasets/nano (the shipped nano dataset) from the probes' trace folders:

    workbench trace --model nano --dtype float32 --prompts datasets/prompts/demo.jsonl --out T1 --deltanet --attention \
        --expert-saliency --mtp
    python probes/routing_specialization.py --model nano --dtype float32 --n 4 --min-count 3 --out T2
    python probes/expert_pruning.py --model nano --dtype float32 --n 64 --out T3 \
        --suites assoc_recall_16pairs_compact arithmetic_mul code_256 --loss-tokens 256 --calibration-tokens 512
    python probes/needle_sweep.py --out T4
    python probes/attribution.py --dtype float32 --prompts 8 --length 256 --out T5
    python probes/patching.py --dtype float32 --pairs 4 --length 256 --out T5
    python probes/ship_nano_datasets.py T1 T2 T3 T4 T5 --out datasets/nano

(2-core CPU, OMP_NUM_THREADS=2, 2026-12-02: 12 s, 15 s, 63 s and about a minute; 6.5 MB shipped. T5, 2026-12-08:
3 s and 45 s. A new schema's dataset can be rebuilt from the old one's runs: pass datasets/nano itself as a trace
folder (its files are read in the current schema, columns added since are null). The
specialisation probe's n is kept at 4 for size: its two routing traces are most of the dataset, 0.8 MB per prompt
per domain; its numbers at n = 4, 8 and 16 agree to 0.003 bits.)
Every committed run of the given trace folders is copied into one staging trace folder, which `workbench export`
writes to --out (a new or empty folder) with its card. A needle-sweep trace folder (the long-context probes) is
added the same way: pass it too.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from workbench.trace.export import copy_runs, export_dataset

NOTES = """The nano model's probe outputs, shipped so the dashboard opens on real data with no model run
(`workbench app datasets/nano`, or `make demo`). Runs (see "How it was made" for each run's exact settings):
a trace of demo prompts with routing, DeltaNet state (with the needle contribution), attention recall, expert
saliency and the MTP head's draft acceptance (`mtp`); the long-context needle sweep (`needle_sweep`); the routing
specialisation probe (the model's routing of the six nano domains, the same at a seeded random init, and the
probe's tables `label_divergence`, `label_experts`, `vocab_specialisation`, column `model`); the prune what-if
sweep (`expert_pruning`: an INTERVENTION, experts masked in the routers); direct logit attribution of held-out
passkey answers (`logit_attribution`, probes/attribution.py) and activation patching of clean / corrupted passkey
pairs (`patching`: an INTERVENTION, probes/patching.py). Rebuilt by `probes/ship_nano_datasets.py`."""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", help="trace folders whose committed runs to ship")
    parser.add_argument("--out", default="datasets/nano")
    args = parser.parse_args(argv)
    staging = Path(tempfile.mkdtemp(prefix="nano-dataset-"))
    try:
        for folder in args.traces:
            copy_runs(folder, staging / "trace")
        summary = export_dataset(staging / "trace", args.out, title="nano", notes=NOTES)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    total = sum(s["bytes"] for s in summary.tables.values())
    print(f"{len(summary.runs)} runs -> {summary.path}: {total / 1e6:.2f} MB in {len(summary.tables)} tables")
    for table, stats in summary.tables.items():
        print(f"  {table}: {stats['rows']} rows, {stats['bytes'] / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
