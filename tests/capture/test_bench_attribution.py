"""bench/bench_attribution.py end to end on the CPU at tiny size: it times both forwards and the attribution it
times is complete (components sum to the model's logit)."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_attribution_bench_runs_at_tiny_size(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_attribution", BENCH / "bench_attribution.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--dims", "tiny", "--tokens", "64", "--device", "cpu", "--dtype", "float32", "--reps", "1"])
    assert result["ratio"] > 0 and result["components"] > 10 and result["completeness_abs_error"] < 1e-5
    sys.modules.pop("bench_capture_overhead", None)
