"""MTP capture: the trunk's logits stay bit-identical, the recorded drafts and acceptance equal the head run by hand
on the trunk's own hidden states, the MTP layer's routing joins the routing table under layer num_hidden_layers, and
every hook is gone after exit and after an error."""

import json

import pytest
import torch
from support.model_state import model_state
from typer.testing import CliRunner

from workbench.capture import CaptureError, CaptureSettings, SequenceInfo, capture
from workbench.cli import app
from workbench.loading import load_model
from workbench.mtp import load_mtp_head, mtp_logits
from workbench.mtp.acceptance import acceptance_rows


@pytest.fixture(scope="module")
def loaded(mtp_checkpoint):
    return load_model(str(mtp_checkpoint), dtype="float32")


def test_logits_unchanged_and_records_equal_the_head_run_by_hand(loaded, mtp_checkpoint):
    model = loaded.model
    ids = torch.randint(0, 250, (1, 40), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with capture(model, CaptureSettings(routing=True, mtp=True)) as run:
            traced = model(input_ids=ids).logits
            records = run.collect()
        assert torch.equal(plain, traced)
        head = load_mtp_head(model, mtp_checkpoint)
        router_out = []
        hook = head.layers[0].mlp.gate.register_forward_hook(lambda m, a, out: router_out.append(out))
        hidden = model.model(input_ids=ids).last_hidden_state
        drafts = mtp_logits(model, head, ids, hidden)
        hook.remove()
    want = acceptance_rows(ids[0], plain[0], drafts[0])
    got = records["mtp"]
    assert got.draft[0].tolist() == want["draft"] and got.trunk_next[0].tolist() == want["trunk_next"]
    assert got.accepted[0].tolist() == want["accepted"]
    assert got.draft_correct[0, :-1].tolist() == [int(c) for c in want["draft_correct"][:-1]]
    assert got.draft_correct[0, -1].item() == -1
    assert torch.allclose(got.p_accepted[0], torch.tensor(want["p_accepted"]), atol=1e-6)
    # the MTP layer's routing: layer index num_hidden_layers, T-1 rows, the head's own router choice
    routing = got.routing
    assert routing.layers == [model.config.num_hidden_layers] and routing.topk_ids.shape[1] == ids.shape[1] - 1
    assert torch.equal(routing.topk_ids[0].long(), router_out[0][2].long())
    assert records["routing"].layers == list(range(model.config.num_hidden_layers))  # the trunk's, unchanged


def test_tables_put_mtp_routing_rows_in_the_routing_table(loaded):
    model = loaded.model
    ids = torch.randint(0, 250, (1, 12), generator=torch.Generator().manual_seed(8))
    with torch.no_grad(), capture(model, CaptureSettings(routing=True, mtp=True)) as run:
        model(input_ids=ids)
        tables = run.tables(SequenceInfo("s0", 12))
    layers = tables["routing"].column("layer").to_pylist()
    L = model.config.num_hidden_layers
    assert layers.count(L) == 11 and all(layers.count(i) == 12 for i in range(L))
    mtp = tables["mtp"]
    assert mtp.num_rows == 11 and mtp.column("position").to_pylist() == list(range(11))
    assert mtp.column("draft_correct").null_count == 1 and mtp.column("draft_correct")[10].as_py() is None


def test_restored_after_exit_and_after_an_error(loaded):
    model = loaded.model
    before = model_state(model)
    with torch.no_grad(), capture(model, CaptureSettings(mtp=True)):
        model(input_ids=torch.tensor([[1, 2, 3]]))
    assert model_state(model) == before
    with pytest.raises(RuntimeError, match="boom"), capture(model, CaptureSettings(mtp=True)):
        raise RuntimeError("boom")
    assert model_state(model) == before


def test_a_checkpoint_without_mtp_is_refused_in_one_line(next_checkpoint, tmp_path):
    loaded = load_model(str(next_checkpoint), dtype="float32")
    with pytest.raises(CaptureError, match="this checkpoint has no MTP weights"):
        with capture(loaded.model, CaptureSettings(mtp=True)):
            pass
    result = CliRunner().invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "abc", "--out",
                                      str(tmp_path / "t"), "--mtp"])
    assert result.exit_code != 0 and "this checkpoint has no MTP weights" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error")] == [
        line for line in result.output.splitlines() if "MTP" in line]  # one error line (the rest: load progress)


def test_cli_traces_mtp(mtp_checkpoint, tmp_path):
    import duckdb

    con = duckdb.connect()  # its own connection: another test can leave a result pending on the default one
    out = tmp_path / "trace"
    result = CliRunner().invoke(app, ["trace", "--model", str(mtp_checkpoint), "--text", "hello there, model",
                                      "--out", str(out), "--mtp"])
    assert result.exit_code == 0, result.output
    rows = con.sql(f"select count(*), min(position), max(position) from read_parquet('{out}/mtp/**/*.parquet')")
    n, lo, hi = rows.fetchall()[0]
    tokens = con.sql(f"select count(*) from read_parquet('{out}/tokens/**/*.parquet')").fetchall()[0][0]
    assert (n, lo, hi) == (tokens - 1, 0, tokens - 2)
    manifest = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert manifest["layer_labels"][-1] == "MTP" and len(manifest["layer_labels"]) == len(manifest["layer_kinds"]) + 1
