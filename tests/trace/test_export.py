"""`workbench export`: a dataset folder every reader loads, whose card's numbers are recomputed from its files; a
non-empty target and a dataset that does not match its card are refused in one line."""

import shutil

import duckdb
import polars
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.trace import open_trace
from workbench.trace.export import DatasetMismatch, ExportError, check_dataset, export_dataset, read_card


def assert_loads_everywhere(root, table, cache_dir):
    """The table loads with HF datasets (by config name), pyarrow, DuckDB and Polars, with equal row counts."""
    import datasets

    rows = read_card(root)["workbench"]["tables"][table]["rows"]
    hf = datasets.load_dataset(str(root), table, split="train", cache_dir=str(cache_dir))  # no stale cache
    assert hf.num_rows == rows and "run_id" in hf.column_names
    assert ds.dataset(str(root / table), format="parquet", partitioning="hive").count_rows() == rows
    assert duckdb.connect().sql(f"select count(*) from read_parquet('{root}/{table}/*/*.parquet')").fetchall()[0][0] == rows
    assert polars.read_parquet(f"{root}/{table}/*/*.parquet").height == rows


def test_export_roundtrip(hand_trace, tmp_path):
    root, runs = hand_trace
    out = tmp_path / "dataset"
    summary = export_dataset(root, out, tables=["tokens", "routing"], runs=[runs["a"]])
    assert sorted(summary.tables) == ["routing", "tokens"]
    trace = open_trace(root)
    for table in ("tokens", "routing"):
        expected = trace.read(table, run_id=runs["a"])
        assert summary.tables[table]["rows"] == expected.num_rows
        got = pq.read_table(out / table / f"run_id={runs['a']}" / "part-0.parquet")
        assert got.column_names[0] == "run_id" and got.equals(expected)
        assert_loads_everywhere(out, table, tmp_path / "hf-cache")
    assert check_dataset(out)["workbench"]["runs"] == [runs["a"]]
    exported = open_trace(out)  # the dataset is a trace folder the dashboard opens, every table readable through it
    assert exported.run_ids() == [runs["a"]]
    for table in ("tokens", "routing"):
        assert exported.read(table, run_id=runs["a"]).equals(trace.read(table, run_id=runs["a"]))
    card = (out / "README.md").read_text()
    assert "Decoder-layer index (0-based) of the MoE block." in card  # column docs from the schema


def test_card_numbers_are_checked(hand_trace, tmp_path):
    root, runs = hand_trace
    out = tmp_path / "dataset"
    export_dataset(root, out, tables=["routing"])
    extra = out / "routing" / f"run_id={runs['b']}" / "part-0.parquet"
    shutil.copy(extra, extra.with_name("part-1.parquet"))  # the files no longer match the card
    with pytest.raises(DatasetMismatch, match="table routing holds"):
        check_dataset(out)
    result = CliRunner().invoke(app, ["check-dataset", str(out)])
    assert result.exit_code == 2 and "table routing holds" in result.output


def test_a_manifest_listing_a_missing_file_is_refused(hand_trace, tmp_path):
    import json

    root, runs = hand_trace
    out = tmp_path / "dataset"
    export_dataset(root, out, tables=["routing"], runs=[runs["a"]])
    path = out / "runs" / f"{runs['a']}.json"
    manifest = json.loads(path.read_text())
    assert manifest["parts"] == {"routing": ["part-0.parquet"]}
    manifest["parts"]["routing"] = ["part-abc-00001.parquet"]  # as a trace's own part names would be
    path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetMismatch, match="lists routing files"):
        check_dataset(out)


def test_refusals(hand_trace, tmp_path):
    root, _ = hand_trace
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not empty"):
        export_dataset(root, full)
    assert (full / "keep.txt").read_text() == "mine" and len(list(full.iterdir())) == 1
    with pytest.raises(ExportError, match="not committed"):
        export_dataset(root, tmp_path / "x", runs=["nope"])
    with pytest.raises(ExportError, match="unknown table"):
        export_dataset(root, tmp_path / "x", tables=["nope"])
    assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(app, ["export", str(root), str(full)])
    assert result.exit_code == 2 and "is not empty" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["export", str(root), str(empty), "--tables", "tokens"])
    assert result.exit_code == 0, result.output
    check_dataset(empty)


def test_copy_runs_merges_trace_folders(hand_trace, tmp_path):
    from workbench.trace.export import copy_runs

    root, runs = hand_trace
    copy_runs(root, tmp_path / "merged", [runs["b"]])
    copy_runs(root, tmp_path / "merged", [runs["a"]])
    merged = open_trace(tmp_path / "merged")
    assert merged.run_ids() == [runs["a"], runs["b"]]
    for table in ("routing", "deltanet"):
        assert merged.read(table).equals(open_trace(root).read(table))
    with pytest.raises(ExportError, match="already in"):
        copy_runs(root, tmp_path / "merged", [runs["a"]])
