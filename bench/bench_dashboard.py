"""Dashboard speed: every Routing & sparsity aggregate on a synthetic 10M-row routing trace, and each page's first
render on the demo trace.

    python bench/bench_dashboard.py                       # writes traces/bench-10m once (about a minute), then times
    python bench/bench_dashboard.py --rows 1000000        # smaller, for a quick look

Aggregates: TraceDB over the folder (DuckDB views), each function called once cold, then `--repeats` times warm
(same connection, files in the OS cache, no result cache); the median warm time is printed. Pages: each in a fresh
Python process under streamlit.testing.v1.AppTest (no Streamlit cache, a new DuckDB connection), timed from the
first `run()` of that page to its end. Targets (issue 11): aggregates < 2 s warm on a 2-core machine, pages < 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/synthetic_routing.py beside this script

PAGES = ["overview", "routing", "token_explorer", "deltanet", "attention", "long_context", "compare"]

PAGE_TIMER = """
import json, sys, time
from streamlit.testing.v1 import AppTest
entry, trace, page = sys.argv[1:4]
at = AppTest.from_file(entry, default_timeout=120)
at.session_state["trace_path"] = trace
at.switch_page(f"app_pages/{page}.py")
start = time.perf_counter()
at.run()
seconds = time.perf_counter() - start
print(json.dumps({"page": page, "seconds": seconds, "exceptions": len(at.exception),
                  "charts": len(at.get("plotly_chart"))}))
"""


def aggregates(db, scope, experts: int, layer: int):
    from workbench.analysis import balance, routing, routing_structure

    load = routing.expert_load(db, scope, experts)
    by_label = routing.load_by_label(db, scope, experts)
    counts, joint = routing_structure.coactivation(db, scope, layer, experts)
    return {
        "expert_load (all layers)": lambda: routing.expert_load(db, scope, experts),
        "load_balance (from load)": lambda: balance.load_balance(load),
        "load_by_label (all layers)": lambda: routing.load_by_label(db, scope, experts),
        "label_divergence (from load_by_label)": lambda: balance.label_divergence(by_label),
        "load_drift, 256-token buckets (all layers)": lambda: balance.drift_divergence(
            routing.load_drift(db, scope, 256, experts)),
        **{f"metric_quantiles {m} (all layers)": (lambda m=m: routing.metric_quantiles(db, scope, m))
           for m in routing.ROUTER_METRICS},
        "vocab_specialisation (one layer)": lambda: routing_structure.vocab_specialisation(db, scope, layer, 3),
        "token_experts (one layer, one token)": lambda: routing_structure.token_experts(db, scope, layer, 7),
        "coactivation (one layer, 512 x 512)": lambda: routing_structure.coactivation(db, scope, layer, experts),
        "coactivation pairs + clustered order": lambda: (routing_structure.coactivation_pairs(counts, joint),
                                                         routing_structure.clustered_order(counts, joint)),
        "layer_transitions (two layers)": lambda: routing_structure.layer_transitions(db, scope, layer, layer + 1),
    }


def time_aggregates(trace: Path, repeats: int, experts: int) -> list[tuple[str, float, float]]:
    from workbench.analysis.db import Scope, TraceDB

    db = TraceDB(trace)
    scope = Scope(db.trace.run_ids()[-1])
    rows = []
    for name, function in aggregates(db, scope, experts, layer=24).items():
        start = time.perf_counter()
        function()
        cold = time.perf_counter() - start
        warm = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            warm.append(time.perf_counter() - start)
        rows.append((name, cold, statistics.median(warm)))
        print(f"  {name:45s} cold {cold:6.2f} s   warm {statistics.median(warm):6.2f} s", flush=True)
    return rows


def time_pages(trace: Path) -> list[dict]:
    entry = str(ROOT / "workbench" / "app" / "streamlit_app.py")
    results = []
    for page in PAGES:
        output = subprocess.run([sys.executable, "-c", PAGE_TIMER, entry, str(trace), page], capture_output=True,
                                text=True, check=True).stdout.strip().splitlines()[-1]
        result = json.loads(output)
        results.append(result)
        print(f"  {page:15s} {result['seconds']:5.2f} s  ({result['charts']} figures, "
              f"{result['exceptions']} exceptions)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", type=Path, default=ROOT / "traces" / "bench-10m")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--demo", type=Path, default=ROOT / "traces" / "demo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average {os.getloadavg()[0]:.1f} "
          f"(other processes sharing the cores slow every figure)")
    if not (args.trace / "runs").is_dir() or not any((args.trace / "runs").glob("*.json")):
        from synthetic_routing import write_synthetic_trace

        start = time.perf_counter()
        write_synthetic_trace(args.trace, rows=args.rows)
        print(f"wrote {args.rows:,} routing rows (E=512, k=10, 48 layers, 5 labels) to {args.trace} in "
              f"{time.perf_counter() - start:.0f} s")
    print(f"Routing & sparsity aggregates on {args.trace} ({args.repeats} warm repeats, median):")
    time_aggregates(args.trace, args.repeats, experts=512)
    print(f"load average now {os.getloadavg()[0]:.1f}")
    if (args.demo / "runs").is_dir():
        print(f"Page first renders on {args.demo} (fresh process each, AppTest):")
        time_pages(args.demo)
    else:
        print(f"no demo trace at {args.demo}: run `make trace` first for the page timings")


if __name__ == "__main__":
    main()
