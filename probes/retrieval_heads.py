"""Retrieval heads (Wu et al. 2024): which full-attention heads copy a needle while the model repeats it.

    python probes/retrieval_heads.py --model nano --suite passkey_1024 --n 8 --out traces/retrieval
    python probes/retrieval_heads.py --model /models/Qwen3-Next-80B-A3B-Instruct --device-map auto \
        --dtype bfloat16 --prompts needles.jsonl --out traces/retrieval

Each prompt needs a span named --needle (default "needle"); the model reads the record's `prompt` key when it
has one (the nano probe records end it where the answer starts), else `text`, and greedily generates as many
tokens as the needle has (--steps). --teacher-forcing feeds the needle's own tokens instead of the model's
choices, so a model that fails to copy still shows which heads look where. Appends one run (tables tokens,
spans, retrieval) to --out; `workbench app OUT` shows it on the Attention recall page.
"""

from __future__ import annotations

import argparse

from workbench.analysis.retrieval import top_retrieval_heads
from workbench.probes import add_model_arguments, load_from_arguments
from workbench.inputs.prompts import Prompt, read_prompts
from workbench.probes.output import table_text
from workbench.probes.retrieval import trace_retrieval
from workbench.trace import open_trace


def nano_suite_prompts(suite: str, seed: int, n: int) -> list[Prompt]:
    from workbench.nano.data import heldout_records

    return [Prompt(r["id"], r["text"], r["label"], {k: v for k, v in r.items() if k not in ("id", "text", "label")})
            for r in heldout_records(suite, seed, n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", help="JSONL prompts with a needle span")
    source.add_argument("--suite", help="a nano held-out suite, e.g. passkey_1024 (workbench.nano.data)")
    parser.add_argument("--n", type=int, default=8, help="records of --suite")
    parser.add_argument("--seed", type=int, default=0, help="seed of --suite")
    parser.add_argument("--needle", default="needle", help="span name of the needle")
    parser.add_argument("--steps", type=int, default=None, help="tokens to generate (default: the needle's length)")
    parser.add_argument("--teacher-forcing", action="store_true")
    parser.add_argument("--out", required=True, help="trace folder to append the run to")
    parser.add_argument("--top", type=int, default=10, help="heads to print")
    args = parser.parse_args()

    prompts = read_prompts(args.prompts) if args.prompts else nano_suite_prompts(args.suite, args.seed, args.n)
    loaded = load_from_arguments(args)
    summary = trace_retrieval(loaded, prompts, args.out, needle=args.needle, steps=args.steps,
                              teacher_forcing=args.teacher_forcing)
    trace = open_trace(args.out)
    manifest = next(m for m in trace.manifests() if m["run_id"] == summary.run_id)
    copied = sum(p["produced"] == p["needle_text"] for p in manifest["prompts"])
    print(f"run {summary.run_id}: {summary.num_sequences} prompts, needle copied exactly in {copied}")
    top = top_retrieval_heads(trace.read("retrieval", run_id=summary.run_id), n=args.top)
    print(f"top {len(top)} heads by retrieval score (mean over prompts of the fraction of copy steps the head copied)")
    print(table_text(top, index=False))


if __name__ == "__main__":
    main()
