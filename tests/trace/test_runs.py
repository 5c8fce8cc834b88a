"""Runs by name: `--name` / `--note` reach the manifest, probes name their runs, `trace.run(...)` picks by id, name or
id prefix and refuses an empty or ambiguous pick in one line, and `workbench runs` lists the catalogue."""

import pytest
from typer.testing import CliRunner

from workbench.trace import open_trace
from workbench.trace.runs import RunPickError, catalogue_row, check_name, pick_run, run_kind

MANIFESTS = [
    {"run_id": "20261208T010000Z-aaaa", "name": "demo", "model": {"source": "nano", "dtype": "float32"},
     "num_tokens": 10, "tables": ["routing", "tokens"]},
    {"run_id": "20261208T020000Z-bbbb", "name": "demo", "num_tokens": 5},
    {"run_id": "20261208T030000Z-cccc", "probe": {"name": "patching", "intervention": True}},
    {"run_id": "20261208T040000Z-dddd", "generation": {"max_new_tokens": 4}, "note": "first try"},
]


def test_pick_by_id_name_and_prefix():
    assert pick_run(MANIFESTS, "20261208T020000Z-bbbb")["run_id"].endswith("bbbb")
    assert pick_run(MANIFESTS, "patching")["run_id"].endswith("cccc")  # a probe's runs answer to its name
    assert pick_run(MANIFESTS, "20261208T04")["run_id"].endswith("dddd")
    with pytest.raises(RunPickError, match=r"^'demo' names 2 runs in this trace \(.*aaaa, .*bbbb\): pick one by its "
                                           r"id$"):
        pick_run(MANIFESTS, "demo")
    with pytest.raises(RunPickError, match=r"no run named 'nope' in this trace; names: demo, patching; ids: "):
        pick_run(MANIFESTS, "nope")
    with pytest.raises(RunPickError, match="has no committed run"):
        pick_run([], "demo")
    assert [run_kind(m) for m in MANIFESTS] == ["trace", "trace", "intervention", "generation"]
    row = catalogue_row(MANIFESTS[0])
    assert (row["name"], row["kind"], row["dtype"], row["tokens"], row["tables"]) == ("demo", "trace", "float32", 10,
                                                                                      "routing, tokens")


def test_names_are_checked():
    assert check_name(" demo ") == "demo" and check_name(None) is None
    for bad in ("", "  ", "two\nlines", "x" * 101):
        with pytest.raises(ValueError, match="--name must be"):
            check_name(bad)


def test_cli_names_runs_and_lists_them(tmp_path, next_checkpoint):
    from workbench.cli import build_app

    app, runner, out = build_app(), CliRunner(), tmp_path / "t"
    base = ["--model", str(next_checkpoint), "--dtype", "float32", "--text", "named runs", "--out", str(out)]
    assert runner.invoke(app, ["trace", *base, "--name", "baseline", "--note", "fp32 check"]).exit_code == 0
    assert runner.invoke(app, ["generate", *base, "--max-new-tokens", "2", "--name", "continued"]).exit_code == 0
    trace = open_trace(out)
    baseline = trace.run("baseline")
    assert baseline["note"] == "fp32 check" and baseline["model"]["dtype"] == "float32"
    assert trace.run("continued")["generation"]["max_new_tokens"] == 2
    listed = runner.invoke(app, ["runs", str(out)])
    assert listed.exit_code == 0 and listed.output.startswith(f"{out}: 2 runs")
    assert "baseline  [trace]" in listed.output and "continued  [generation]" in listed.output
    assert "note: fp32 check" in listed.output
    bad = runner.invoke(app, ["trace", *base, "--name", "two\nlines"])
    assert bad.exit_code == 2 and bad.output.strip() == "error: --name must be a non-empty single line, got 'two\\nlines'"
