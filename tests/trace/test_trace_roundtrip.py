"""Write -> read keeps every value; a second run appends without touching the first; bad folders refused."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.capture import CaptureSettings, capture
from workbench.loading import LoadedModel
from workbench.adapters import get_adapter
from workbench.inputs.prompts import Prompt
from workbench.trace import SCHEMA_VERSION, TraceFolderError, TraceWriter, open_trace
from workbench.inputs.spans import encode
from workbench.tracing import trace_prompts

PROMPTS = [Prompt("p0", "hello world, hello routers", "prose"), Prompt("p1", "x = [1, 2, 3]", None)]


@pytest.fixture
def loaded(tiny_next, tokenizer):
    return LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)


def _files_snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_value_survives_write_read(loaded, tmp_path):
    summary = trace_prompts(loaded, PROMPTS, tmp_path / "t", CaptureSettings(router_logits=True), progress=False)
    trace = open_trace(tmp_path / "t")
    routing = trace.read("routing").to_pandas()
    tokens = trace.read("tokens").to_pandas()
    logits = trace.read("router_logits").to_pandas()
    assert set(routing.run_id) == {summary.run_id}
    for prompt in PROMPTS:
        ids = encode(loaded.tokenizer, prompt.text)
        with torch.inference_mode(), capture(loaded.model, CaptureSettings(router_logits=True)) as run:
            loaded.model(input_ids=torch.tensor([ids]), use_cache=False)
            expected = run.collect("routing")
        seq_tokens = tokens[tokens.seq_id == prompt.id].sort_values("position")
        assert seq_tokens.token_id.tolist() == ids
        assert seq_tokens.token.tolist() == loaded.tokenizer.convert_ids_to_tokens(ids)
        assert [None if pd.isna(x) else x for x in seq_tokens.label] == [prompt.label] * len(ids)
        seq = routing[routing.seq_id == prompt.id].sort_values(["layer", "position"])
        seq_logits = logits[logits.seq_id == prompt.id].sort_values(["layer", "position"])
        assert len(seq) == len(expected.layers) * len(ids)
        for column, tensor in [("router_entropy", expected.router_entropy), ("topk_mass", expected.topk_mass),
                               ("topk_margin", expected.topk_margin), ("shared_gate", expected.shared_gate)]:
            np.testing.assert_array_equal(seq[column].to_numpy(), tensor.reshape(-1).numpy().astype(np.float16))
        np.testing.assert_array_equal(np.stack(seq.topk_ids.to_numpy()), expected.topk_ids.reshape(-1, 4).numpy())
        weights = np.stack(seq.topk_weights.to_numpy())
        np.testing.assert_array_equal(weights, expected.topk_weights.reshape(-1, 4).numpy().astype(np.float16))
        np.testing.assert_allclose(weights.astype(np.float64), expected.topk_weights.reshape(-1, 4).numpy(), atol=2.5e-4)
        np.testing.assert_array_equal(
            np.stack(seq_logits.router_logits.to_numpy()),
            expected.router_logits.reshape(-1, 32).numpy().astype(np.float16),
        )
    manifest = trace.manifests()[0]
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["capture"] == json.loads(json.dumps(CaptureSettings(router_logits=True).to_dict()))
    assert [p["id"] for p in manifest["prompts"]] == ["p0", "p1"]
    assert manifest["model"]["architecture"] == "Qwen3NextForCausalLM" and len(manifest["model"]["config_hash"]) == 16
    assert manifest["packages"]["torch"] and manifest["tokenizer"]["vocab_size"] == len(loaded.tokenizer)


def test_schema_version_in_file_metadata(loaded, tmp_path):
    import pyarrow.parquet as pq

    trace_prompts(loaded, PROMPTS[:1], tmp_path, progress=False)
    files = list(tmp_path.rglob("*.parquet"))
    assert files
    for path in files:
        assert pq.read_schema(path).metadata[b"workbench.schema_version"] == SCHEMA_VERSION.encode()


def test_append_keeps_first_run_intact(loaded, tmp_path):
    first = trace_prompts(loaded, PROMPTS[:1], tmp_path, progress=False)
    before = _files_snapshot(tmp_path)
    second = trace_prompts(loaded, PROMPTS, tmp_path, progress=False)
    after = _files_snapshot(tmp_path)
    for path, content in before.items():
        if path.name != "workbench.json":
            assert after[path] == content, path
    trace = open_trace(tmp_path)
    assert trace.run_ids() == sorted([first.run_id, second.run_id])
    assert trace.read("tokens", run_id=first.run_id).num_rows == first.num_tokens
    assert trace.read("tokens").num_rows == first.num_tokens + second.num_tokens


def test_error_mid_run_leaves_folder_untouched(loaded, tmp_path, monkeypatch):
    """The second prompt fails after the first one's rows were already written to staging (one row per file), before
    the run's first part was committed (tests/tracing/test_parts_and_resume.py: what a later failure keeps)."""
    import functools

    import workbench.tracing.orchestrator

    trace_prompts(loaded, PROMPTS[:1], tmp_path, progress=False)
    before = _files_snapshot(tmp_path)
    staged = []
    real_flush = TraceWriter._flush

    def flush_and_note(writer, table):
        real_flush(writer, table)
        writer.wait_for_writes()  # files are written on the writer's pool
        staged.extend(writer._staging.rglob("*.parquet"))

    monkeypatch.setattr(TraceWriter, "_flush", flush_and_note)
    monkeypatch.setattr(workbench.tracing.orchestrator, "TraceWriter",
                        functools.partial(TraceWriter, rows_per_part=1))
    real_forward, calls = loaded.model.forward, []

    def second_call_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "forward", second_call_fails)
    with pytest.raises(RuntimeError, match="out of memory"):
        trace_prompts(loaded, PROMPTS, tmp_path, progress=False)
    assert staged, "the first prompt's parts should have reached staging before the error"
    assert _files_snapshot(tmp_path) == before
    assert not (tmp_path / ".staging").exists()


@pytest.mark.parametrize("max_tokens", [0, -3])
def test_max_tokens_below_one_refused_before_anything_runs(loaded, tmp_path, max_tokens):
    """A negative max_tokens would silently drop the END of each prompt (token_ids[:-3])."""
    with pytest.raises(ValueError, match="max_tokens must be an integer >= 1"):
        trace_prompts(loaded, PROMPTS, tmp_path / "t", max_tokens=max_tokens, progress=False)
    assert not (tmp_path / "t").exists()


def test_other_schema_version_refused_untouched(loaded, tmp_path):
    trace_prompts(loaded, PROMPTS[:1], tmp_path, progress=False)
    descriptor = tmp_path / "workbench.json"
    descriptor.write_text(json.dumps({"format": "workbench-trace", "schema_version": "0.9"}))
    before = _files_snapshot(tmp_path)
    with pytest.raises(TraceFolderError, match="schema version 0.9"):
        trace_prompts(loaded, PROMPTS, tmp_path, progress=False)
    with pytest.raises(TraceFolderError, match="schema version 0.9"):
        open_trace(tmp_path)
    assert _files_snapshot(tmp_path) == before


def test_non_trace_folder_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TraceFolderError, match="not a workbench trace folder"):
        TraceWriter(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_uncommitted_partition_is_invisible(loaded, tmp_path):
    run = trace_prompts(loaded, PROMPTS[:1], tmp_path, progress=False)
    stray = tmp_path / "tokens" / "run_id=crashed"
    stray.mkdir()
    [part] = (tmp_path / "tokens" / f"run_id={run.run_id}").glob("part-*.parquet")
    part.replace(stray / part.name)
    trace = open_trace(tmp_path)
    assert trace.read("tokens").num_rows == 0
    assert trace.size_bytes("tokens") == 0  # `workbench info` sizes count committed runs only
    assert trace.size_bytes("routing") > 0


def test_reads_with_duckdb_polars_and_datasets(loaded, tmp_path):
    import duckdb
    import polars as pl

    summary = trace_prompts(loaded, PROMPTS, tmp_path, progress=False)
    trace = open_trace(tmp_path)
    con = trace.duckdb()
    layers, rows = con.execute("select count(distinct layer), count(*) from routing").fetchone()
    assert (layers, rows) == (4, 4 * summary.num_tokens)
    raw = duckdb.execute(
        f"select count(*) from read_parquet('{tmp_path}/routing/*/*.parquet', hive_partitioning=true) "
        f"where run_id = '{summary.run_id}'"
    ).fetchone()[0]
    assert raw == 4 * summary.num_tokens
    frame = pl.read_parquet(f"{tmp_path}/routing/*/*.parquet", hive_partitioning=True)
    assert frame.height == 4 * summary.num_tokens and frame["topk_ids"].list.len().unique().to_list() == [4]

    from datasets import load_dataset

    data = load_dataset("parquet", data_files=f"{tmp_path}/tokens/*/*.parquet", split="train")
    assert len(data) == summary.num_tokens


def test_failed_commit_removes_its_own_partitions(loaded, tmp_path, monkeypatch):
    import workbench.trace.writer as writer_module

    trace_prompts(loaded, PROMPTS[:1], tmp_path, progress=False)
    before = _files_snapshot(tmp_path)

    def disk_full(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(writer_module, "write_json_atomic", disk_full)
    with pytest.raises(OSError, match="disk full"):
        trace_prompts(loaded, PROMPTS, tmp_path, progress=False)
    assert _files_snapshot(tmp_path) == before
