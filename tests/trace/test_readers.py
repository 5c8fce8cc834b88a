"""Schema 1.1 on disk: run_id inside every file, span masses HF datasets can read, and 1.0 folders read-only."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.trace import SCHEMA_VERSION, TraceFolderError, TraceWriter, open_trace
from workbench.trace.folder import DESCRIPTOR


def test_run_id_is_the_first_column_of_every_file(hand_trace):
    path, runs = hand_trace
    files = sorted(path.glob("*/run_id=*/*.parquet"))
    assert len(files) >= 14
    for file in files:
        table = pq.read_table(file)  # no hive partitioning: the file alone
        assert table.column_names[0] == "run_id"
        assert set(table["run_id"].to_pylist()) == {file.parent.name.split("=", 1)[1]}
        assert pq.read_schema(file).metadata[b"workbench.schema_version"] == SCHEMA_VERSION.encode()


def test_every_table_loads_with_hf_datasets(hand_trace):
    import datasets

    path, runs = hand_trace
    for table in open_trace(path).tables():
        loaded = datasets.load_dataset("parquet", data_files=str(path / table / "*" / "*.parquet"), split="train")
        assert "run_id" in loaded.column_names and len(loaded) == open_trace(path).dataset(table).count_rows()


def test_polars_and_pyarrow_agree_on_rows_per_run(hand_trace):
    import polars as pl

    path, runs = hand_trace
    counts = pl.read_parquet(str(path / "routing" / "*" / "*.parquet")).group_by("run_id").len().sort("run_id")
    assert counts["len"].to_list() == [10, 6]
    assert open_trace(path).read("routing", run_id=runs["a"]).num_rows == 10


def test_old_schema_folder_opens_read_only(tmp_path):
    old = tmp_path / "old"
    (old / "runs").mkdir(parents=True)
    (old / DESCRIPTOR).write_text(json.dumps({"format": "workbench-trace", "schema_version": "1.0"}))
    partition = old / "tokens" / "run_id=r1"
    partition.mkdir(parents=True)  # a 1.0 file: run_id only in the folder name
    pq.write_table(pa.table({"seq_id": ["s"], "position": pa.array([0], pa.int32()), "token_id": pa.array([3], pa.int32()),
                             "token": ["a"], "label": pa.array([None], pa.string())}), partition / "part-00000.parquet")
    (old / "runs" / "r1.json").write_text(json.dumps({"run_id": "r1", "num_tokens": 1, "prompts": [], "tables": ["tokens"]}))
    trace = open_trace(old)
    assert trace.read_only and "read-only" in trace.note
    assert trace.read("tokens")["run_id"].to_pylist() == ["r1"]  # from the hive partition
    assert trace.duckdb().execute("select run_id, token_id from tokens").fetchall() == [("r1", 3)]
    with pytest.raises(TraceFolderError, match="reads but does not append"):
        TraceWriter(old)


def test_unknown_schema_version_is_refused(tmp_path):
    (tmp_path / DESCRIPTOR).write_text(json.dumps({"format": "workbench-trace", "schema_version": "9.9"}))
    with pytest.raises(TraceFolderError, match="schema version 9.9"):
        open_trace(tmp_path)


def test_schema_1_1_deltanet_folder_reads_with_the_renamed_decay_columns_null(tmp_path):
    """A 1.1 folder (float16 exp(g) in decay_min) opens read-only: decay_mean reads, log_decay_min is null, the old
    column stays in the files (DuckDB sees it), nothing is rewritten."""
    old = tmp_path / "old"
    (old / "runs").mkdir(parents=True)
    (old / DESCRIPTOR).write_text(json.dumps({"format": "workbench-trace", "schema_version": "1.1"}))
    partition = old / "deltanet" / "run_id=r1"
    partition.mkdir(parents=True)
    f16, f32 = pa.float16(), pa.float32()
    import numpy as np

    pq.write_table(pa.table({
        "run_id": ["r1"], "seq_id": ["s"], "position": pa.array([0], pa.int32()), "layer": pa.array([0], pa.int16()),
        "state_norm_mean": pa.array(np.array([1.0], np.float16), f16),
        "state_norm_max": pa.array(np.array([2.0], np.float16), f16),
        "decay_mean": pa.array(np.array([0.5], np.float16), f16), "decay_min": pa.array(np.array([0.0], np.float16), f16),
        "beta_mean": pa.array(np.array([0.25], np.float16), f16), "beta_max": pa.array(np.array([0.5], np.float16), f16),
        "half_life_mean": pa.array([1.0], f32), "half_life_max": pa.array([2.0], f32)}), partition / "part-00000.parquet")
    (old / "runs" / "r1.json").write_text(json.dumps({"run_id": "r1", "num_tokens": 1, "prompts": [],
                                                      "tables": ["deltanet"]}))
    trace = open_trace(old)
    assert trace.read_only
    table = trace.read("deltanet").to_pylist()[0]
    assert table["decay_mean"] == 0.5 and table["log_decay_min"] is None and table["run_id"] == "r1"
    assert trace.duckdb().execute("select decay_min, decay_mean from deltanet").fetchall() == [(0.0, 0.5)]


def test_duckdb_views_give_columns_added_since_the_files_as_null():
    """The shipped dataset's mtp files predate the tie column: the view has it, all NULL, as the pyarrow reader
    gives it, so analyses that read it work on older runs."""
    from pathlib import Path

    from workbench.trace import open_trace

    trace = open_trace(Path(__file__).resolve().parents[2] / "datasets" / "nano")
    connection = trace.duckdb()
    rows, ties = connection.execute("select count(*), count(tie) from mtp").fetchone()
    assert rows > 0 and ties == 0
    assert trace.read("mtp", columns=["tie"]).column("tie").null_count == rows
