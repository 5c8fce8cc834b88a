"""`trace_prompts` with attention on: spans, attention and attention_gate tables hold the captured numbers."""

import json

import pytest
import torch
from typer.testing import CliRunner

from workbench.adapters import get_adapter
from workbench.capture import CaptureSettings, capture
from workbench.cli import app
from workbench.loading import LoadedModel
from workbench.inputs.prompts import Prompt
from workbench.trace import open_trace
from workbench.inputs.spans import encode
from workbench.tracing import trace_prompts

pytestmark = pytest.mark.filterwarnings("ignore")

TEXT = "the needle 4711 hides in hay, hay and hay. what hides? the needle"
SPANS = [{"name": "needle", "start": 11, "end": 15}, {"name": "question", "start": 43, "end": 54, "query": True}]


@pytest.fixture(scope="module")
def attention_trace(tmp_path_factory, tiny_next, tokenizer):
    out = tmp_path_factory.mktemp("attn") / "trace"
    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    prompts = [Prompt("hay", TEXT, "passkey", {"spans": SPANS}), Prompt("plain", "no spans here", None)]
    settings = CaptureSettings(attention=True, attention_stride=16, attention_topk=4)
    trace_prompts(loaded, prompts, out, settings, progress=False)
    return open_trace(out)


def test_tables_hold_the_capture(attention_trace, tiny_next, tokenizer):
    ids = encode(tokenizer, TEXT)
    settings = CaptureSettings(routing=False, attention=True, attention_stride=16, attention_topk=4)
    with capture(tiny_next, settings) as run:
        run.recorder("attention").set_sequence([("needle", 11, 15), ("question", 43, 54)], range(43, 54))
        tiny_next(input_ids=torch.tensor([ids]), use_cache=False)
        ref = run.collect("attention")
    rows = attention_trace.read("attention").to_pandas()
    hay = rows[rows.seq_id == "hay"].sort_values(["layer", "position", "head"])
    expected_positions = sorted({15, 31, 47, 63, len(ids) - 1, *range(43, 54)})
    assert sorted(hay.position.unique()) == expected_positions == ref.query_positions.tolist()
    assert len(hay) == len(expected_positions) * 4  # one layer x 4 heads
    needle = hay.span_mass.map(lambda pairs: {p["span"]: p["mass"] for p in pairs}["needle"]).to_numpy()
    assert abs(needle - ref.span_mass["needle"][0, 0].reshape(-1).numpy()).max() < 1e-7
    assert (hay.topk_positions.map(list).tolist() == ref.topk_pos[0, 0].reshape(-1, 4).tolist())
    assert abs(hay.entropy.to_numpy() - ref.entropy[0, 0].reshape(-1).numpy()).max() < 1e-7
    plain = rows[rows.seq_id == "plain"]
    assert sorted(plain.position.unique()) == [12] and plain.span_mass.map(len).eq(0).all()

    gate = attention_trace.read("attention_gate").to_pandas()
    assert len(gate[gate.seq_id == "hay"]) == len(ids) and set(gate.layer) == {3}
    hay_gate = gate[gate.seq_id == "hay"].sort_values("position")
    assert abs(hay_gate.gate_mean.to_numpy() - ref.gate_mean[0, 0].mean(-1).numpy()).max() < 1e-3  # float16

    spans = attention_trace.read("spans").to_pandas()
    assert spans[["span", "start_token", "end_token", "query"]].values.tolist() == [
        ["needle", 11, 15, False], ["question", 43, 54, True]]


def test_duckdb_reads_span_mass_by_name(attention_trace):
    """The docs' query (Reading traces): needle mass per head over the queries after the needle."""
    con = attention_trace.duckdb()
    result = con.execute(
        "select layer, head, avg(span_mass['needle']) m, count(*) n from attention a join spans s "
        "using (run_id, seq_id) where s.span = 'needle' and a.position >= s.end_token group by all order by head"
    ).df()
    assert result.layer.tolist() == [3] * 4 and (result.m > 0).all() and (result.m < 1).all()
    rows = attention_trace.read("attention").to_pandas().query("seq_id == 'hay' and position >= 15")
    by_head = rows.assign(m=rows.span_mass.map(lambda pairs: {p["span"]: p["mass"] for p in pairs}["needle"])).groupby("head").m.mean()
    assert abs(result.m.to_numpy() - by_head.to_numpy()).max() < 1e-6


def _prompts(tmp_path, records):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_cli_attention_flags(tmp_path, next_checkpoint):
    runner = CliRunner()
    prompts = _prompts(tmp_path, [{"id": "a", "text": TEXT, "spans": SPANS}])
    out = tmp_path / "trace"
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--prompts", str(prompts), "--out",
                                 str(out), "--attention", "--attention-stride", "8", "--attention-topk", "3"])
    assert result.exit_code == 0, result.output
    trace = open_trace(out)
    manifest = trace.manifests()[-1]
    assert manifest["capture"]["attention"] is True and manifest["capture"]["attention_stride"] == 8
    rows = trace.read("attention").to_pandas()
    assert rows.topk_positions.map(len).eq(3).all() and 7 in set(rows.position)

    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "x", "--out", str(out),
                                 "--attention", "--attention-topk", "0"])
    assert result.exit_code == 2 and "attention-topk" in result.output

    bad = _prompts(tmp_path, [{"id": "a", "text": "short", "spans": [{"name": "needle", "start": 2, "end": 9}]}])
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--prompts", str(bad), "--out", str(out)])
    assert result.exit_code == 2 and "line 1 (prompt 'a'): span 0 ('needle'): [2, 9) is outside" in result.output


def test_cli_refuses_attention_without_full_attention_layer(tmp_path, tokenizer):
    from support.toy import build_model, qwen3_next_config, write_checkpoint

    config = qwen3_next_config(num_layers=2, vocab_size=len(tokenizer), layer_types=["linear_attention"] * 2)
    folder = write_checkpoint(tmp_path / "linear", build_model(config), tokenizer)
    result = CliRunner().invoke(app, ["trace", "--model", str(folder), "--text", "abc", "--out",
                                      str(tmp_path / "t"), "--attention"])
    assert result.exit_code == 2 and "needs a full-attention layer" in result.output
    assert not (tmp_path / "t" / "attention").exists()
