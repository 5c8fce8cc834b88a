"""DeltaNet tables: write -> read keeps the captured values (at the schema's dtypes), needle spans become recall
pairs, and the default table's size per token stays under 1 KB for the 80B geometry."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from support.toy import REAL_80B_DIMS, hybrid_layer_types

from workbench.adapters import get_adapter
from workbench.capture import CaptureSettings, capture
from workbench.loading import LoadedModel
from workbench.inputs.prompts import Prompt
from workbench.trace import open_trace
from workbench.capture.deltanet.tables import deltanet_bytes_per_token, deltanet_row_bytes, deltanet_tables
from workbench.inputs.spans import encode
from workbench.tracing import trace_prompts

pytestmark = pytest.mark.filterwarnings("ignore")
TEXT = "alpha beta gamma. the pass key is 12345. delta epsilon zeta eta theta"
NEEDLE = {"name": "needle", "start": TEXT.index("12345"), "end": TEXT.index("12345") + 5}
PROMPTS = [Prompt("needle", TEXT, "recall", {"spans": [NEEDLE]}), Prompt("plain", "x = [1, 2, 3]", None)]
SETTINGS = CaptureSettings(deltanet=True, deltanet_head_stride=8, state_snapshots=(0, -1))


@pytest.fixture(scope="module")
def traced(tmp_path_factory, tiny_next, tokenizer):
    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    out = tmp_path_factory.mktemp("deltanet")
    trace_prompts(loaded, PROMPTS, out, SETTINGS, progress=False)
    return loaded, open_trace(out)


def _expected(loaded, prompt, pairs=None):
    ids = encode(loaded.tokenizer, prompt.text)
    with torch.inference_mode(), capture(loaded.model, SETTINGS, loaded.adapter) as run:
        run.recorder("deltanet").set_recall_pairs(pairs)
        loaded.model(input_ids=torch.tensor([ids]), use_cache=False)
        return ids, run.collect("deltanet")


def _sequence(trace, table, seq_id, order):
    data = trace.read(table)
    return data.filter(pc.equal(data["seq_id"], seq_id)).to_pandas().sort_values(order).reset_index(drop=True)


def test_every_deltanet_table_survives_write_read(traced):
    loaded, trace = traced
    assert {"deltanet", "deltanet_heads", "deltanet_head_summary", "state_recall", "state_snapshots"} <= set(trace.tables())
    needle_end = TEXT.index("12345") + 5  # the byte tokenizer: one token per character here
    for prompt, pairs in [(PROMPTS[0], [[needle_end - 1, needle_end - 1]]), (PROMPTS[1], None)]:
        ids, expected = _expected(loaded, prompt, pairs)
        T, L = len(ids), len(expected.layers)
        rows = _sequence(trace, "deltanet", prompt.id, ["layer", "position"])
        assert len(rows) == L * T and rows.position.tolist() == list(range(T)) * L
        for column, dtype in [("state_norm_mean", np.float16), ("decay_mean", np.float16), ("log_decay_min", np.float32), ("beta_max", np.float16),
                              ("half_life_mean", np.float32), ("half_life_max", np.float32)]:
            np.testing.assert_array_equal(rows[column].to_numpy(), getattr(expected, column).reshape(-1).numpy().astype(dtype))
        heads = _sequence(trace, "deltanet_heads", prompt.id, ["layer", "position"])
        assert heads.position.tolist() == list(range(0, T, 8)) * L
        np.testing.assert_array_equal(np.stack(heads.state_norm.to_numpy()),
                                      expected.head_state_norm.reshape(-1, 4).numpy().astype(np.float16))
        summary = _sequence(trace, "deltanet_head_summary", prompt.id, ["layer", "head"])
        assert summary.tokens.tolist() == [T] * (L * 4)
        np.testing.assert_allclose(summary.state_norm_mean.to_numpy(),
                                   (expected.segment_state_norm_sum[:, 0] / T).reshape(-1).numpy(), rtol=1e-6)
        np.testing.assert_allclose(summary.half_life.to_numpy(),
                                   (np.log(2) / -(expected.segment_log_decay_sum[:, 0] / T)).reshape(-1).numpy(), rtol=1e-5)
        snaps = _sequence(trace, "state_snapshots", prompt.id, ["layer", "position", "head"])
        assert sorted(set(snaps.position)) == [0, T - 1] and len(snaps) == L * 2 * 4
        np.testing.assert_array_equal(snaps.top_sv.to_numpy(), expected.snapshot_top_sv.reshape(-1).numpy())
    recall = _sequence(trace, "state_recall", "needle", ["layer", "position"])
    key = needle_end - 1
    assert set(recall.key_pos) == {key} and set(recall.pair) == {0}
    assert recall.position.tolist() == list(range(key, len(TEXT))) * L
    np.testing.assert_array_equal(np.stack(recall.rel_err.to_numpy()),
                                  expected_recall(loaded, key).astype(np.float16))
    assert len(_sequence(trace, "state_recall", "plain", ["layer"])) == 0


def expected_recall(loaded, key):
    _, expected = _expected(loaded, PROMPTS[0], [[key, key]])
    return expected.recall_rel_err[:, 0, key:].reshape(-1, 4).numpy()


def test_per_head_summary_equals_the_mean_of_per_head_rows(tiny_next):
    from workbench.capture.deltanet.tables import batch_head_summary_table

    settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head")
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        tiny_next(input_ids=torch.randint(0, 200, (2, 30), generator=torch.Generator().manual_seed(0)), use_cache=False)
        got = run.collect("deltanet")
    second = deltanet_tables("s", got, slice(30, 60))  # batch row 1
    summary = second["deltanet_head_summary"].to_pandas()
    mean = got.head_state_norm[:, 30:60].mean(1).reshape(-1).numpy()
    np.testing.assert_allclose(summary.state_norm_mean.to_numpy(), mean, rtol=1e-5)
    assert second["deltanet"].column("position").to_pylist()[:3] == [0, 1, 2]
    # both rows at once (one product over the segments): each sequence's rows against its own per-head rows
    both = batch_head_summary_table([("a", slice(0, 30)), ("b", slice(30, 60))], got).to_pandas()
    L, H = len(got.layers), got.head_state_norm.shape[-1]
    assert both.seq_id.tolist() == ["a"] * (L * H) + ["b"] * (L * H) and both.tokens.tolist() == [30] * (2 * L * H)
    for seq_id, rows in (("a", slice(0, 30)), ("b", slice(30, 60))):
        part = both[both.seq_id == seq_id]
        np.testing.assert_allclose(part.state_norm_mean.to_numpy(), got.head_state_norm[:, rows].mean(1).reshape(-1),
                                   rtol=1e-5)
        np.testing.assert_array_equal(part.state_norm_max.to_numpy(), got.head_state_norm[:, rows].amax(1).reshape(-1))
        np.testing.assert_allclose(part.beta_mean.to_numpy(), got.head_beta[:, rows].mean(1).reshape(-1), rtol=1e-5)


def test_default_table_stays_under_a_kilobyte_per_token_for_the_80b(tiny_next):
    """bytes/token = (DeltaNet layers) x (row bytes); the 80B has 36 DeltaNet layers of its 48."""
    kinds = hybrid_layer_types(48)
    deltanet_count = kinds.count("linear_attention")
    assert deltanet_count == 36 and REAL_80B_DIMS["linear_num_value_heads"] == 32
    assert deltanet_row_bytes() == 28  # position 4 + layer 2 + 5 float16 x 2 + 3 float32 x 4
    assert deltanet_bytes_per_token(deltanet_count) == 1008 < 1024
    with torch.inference_mode(), capture(tiny_next, CaptureSettings(routing=False, deltanet=True)) as run:
        tiny_next(input_ids=torch.randint(0, 200, (1, 50)), use_cache=False)
        table = deltanet_tables("s", run.collect("deltanet"), slice(0, 50))["deltanet"]
    numeric = sum(table.column(name).nbytes for name in table.column_names if name != "seq_id")
    assert numeric == table.num_rows * deltanet_row_bytes()  # the formula is the in-memory row size
    assert numeric / 50 == deltanet_bytes_per_token(3)


def test_per_head_and_recall_row_sizes_match_the_readme(tiny_next):
    """The DeltaNet tutorial (docs): deltanet_heads rows are 22 + 12 Hv bytes, state_recall rows 48 + 12 Hv (list offsets included)."""
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head")
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        run.recorder("deltanet").set_recall_pairs([[0, 0]])
        tiny_next(input_ids=torch.randint(0, 200, (1, 40)), use_cache=False)
        tables = deltanet_tables("s", run.collect("deltanet"), slice(0, 40))
    heads = tiny_next.config.linear_num_value_heads
    for name, row_bytes in (("deltanet_heads", 22 + 12 * heads), ("state_recall", 48 + 12 * heads)):
        table = tables[name]
        numeric = sum(table.column(c).nbytes for c in table.column_names if c != "seq_id")
        assert numeric == table.num_rows * row_bytes, name


def test_cli_deltanet_flags(tmp_path, next_checkpoint):
    from typer.testing import CliRunner

    from workbench.cli import app

    runner = CliRunner()
    out = tmp_path / "trace"
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "the key is 42 ok", "--out", str(out),
                                 "--deltanet", "--deltanet-head-stride", "4", "--state-snapshot", "-1"])
    assert result.exit_code == 0, result.output
    trace = open_trace(out)
    assert {"deltanet", "deltanet_heads", "deltanet_head_summary", "state_snapshots"} <= set(trace.tables())
    assert trace.manifests()[0]["capture"]["state_snapshots"] == [-1]
    assert set(trace.read("state_snapshots").column("position").to_pylist()) == {15}
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "x", "--out", str(out),
                                 "--state-snapshot", "3"])
    assert result.exit_code == 2 and "needs --deltanet" in result.output


def test_batch_tables_equal_the_one_sequence_tables_concatenated(tiny_next):
    """A right-padded batch of three rows (60, 23 and 41 real tokens): the per-token table by one gather per column
    equals `deltanet_table` of each row concatenated in row order, and the per-sequence tables keep row order."""
    from workbench.capture import SequenceInfo
    from workbench.capture.deltanet.tables import batch_deltanet_tables, deltanet_table

    lengths, width = [60, 23, 41], 60
    sequences = [SequenceInfo(f"s{b}", n, row=b, padded_tokens=width) for b, n in enumerate(lengths)]
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_head_stride=8)
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        run.begin_batch(sequences)
        tiny_next(input_ids=torch.randint(3, 200, (3, width), generator=torch.Generator().manual_seed(4)),
                  use_cache=False)
        record = run.collect("deltanet")
    got = batch_deltanet_tables([(s.seq_id, s.rows) for s in sequences], record)
    expected = pa.concat_tables([deltanet_table(s.seq_id, record, s.rows) for s in sequences])
    assert got["deltanet"].num_rows == 3 * sum(lengths) and got["deltanet"].equals(expected)  # 3 DeltaNet layers
    assert got["deltanet_heads"].column("seq_id").to_pylist() == sorted(got["deltanet_heads"].column("seq_id")
                                                                        .to_pylist())
    assert set(got["deltanet_head_summary"].column("seq_id").to_pylist()) == {"s0", "s1", "s2"}
