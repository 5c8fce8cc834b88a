"""bench/bench_generate.py end to end on the CPU at tiny size: it times every mode, and speculative greedy output
equals plain greedy output (the bench fails loudly otherwise)."""

import importlib.util
from pathlib import Path


def test_the_generation_bench_runs_at_tiny_size(capsys):
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_generate.py"
    spec = importlib.util.spec_from_file_location("bench_generate", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--new-tokens", "6", "--prompt-tokens", "12", "--reps", "1", "--draft-tokens", "2"])
    assert result["speculative_equals_greedy"] and set(result["tokens_per_s"]) == {"plain", "routing", "all",
                                                                                     "speculative"}
    assert all(v > 0 for v in result["tokens_per_s"].values()) and 0 in result["kept_by_draft_index"]
    assert "rep 0:" in capsys.readouterr().out
