"""`workbench trace` on every family's written checkpoint: the tables each family's adapter promises, no others."""

import json

import pytest
from typer.testing import CliRunner

from workbench.adapters.facts import model_facts
from workbench.analysis.facts import RunFacts, run_facts
from workbench.cli import app
from workbench.adapters.tiny import FAMILY_CONFIGS
from workbench.trace import open_trace

pytestmark = pytest.mark.filterwarnings("ignore")
TEXT = "the key is 4711. what is the key? 4711"
SPANS = [{"name": "needle", "start": 11, "end": 15}, {"name": "question", "start": 17, "end": 32, "query": True}]


@pytest.mark.parametrize("family", list(FAMILY_CONFIGS))
def test_cli_traces_every_family(family, family_checkpoints, tmp_path):
    _, folder, loaded = family_checkpoints(family)
    adapter, model = loaded.adapter, loaded.model
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "p", "text": TEXT, "spans": SPANS}) + "\n")
    out = tmp_path / "trace"
    flags = ["--router-logits", "--attention", "--attention-stride", "8"]
    if adapter.linear_attention is not None:
        flags += ["--deltanet", "--deltanet-head-stride", "4"]
    result = CliRunner().invoke(app, ["trace", "--model", str(folder), "--prompts", str(prompts), "--out", str(out),
                                      "--dtype", "float32", *flags])
    assert result.exit_code == 0, result.output
    trace = open_trace(out)
    manifest = trace.manifests()[0]
    assert manifest["family"] == adapter.name and manifest["model"]["architecture"] == adapter.architecture
    tables = set(trace.tables())
    num_tokens = trace.read("tokens").num_rows
    moe_layers = sorted(adapter.routers(model))
    assert manifest["moe_layers"] == moe_layers
    assert run_facts(manifest) == RunFacts(manifest["layer_kinds"], manifest["layer_labels"],  # as the pages read them
                                           manifest["num_experts"], manifest["top_k"], manifest["heads"])
    assert manifest["heads"] == model_facts(adapter, model)["heads"] and manifest["layer_labels"][0].startswith("L0 ")
    if moe_layers:
        assert {"routing", "router_logits"} <= tables
        assert trace.read("routing").num_rows == num_tokens * len(moe_layers)
    else:
        assert not {"routing", "router_logits"} & tables  # a dense family: the routing table is simply absent
    kinds = manifest["layer_kinds"]
    attention_layers = set(trace.read("attention").column("layer").to_pylist())
    assert attention_layers == {i for i, kind in enumerate(kinds) if kind == "full_attention"}
    assert ("attention_gate" in tables) == (adapter.attention.gate_path is not None)
    if adapter.linear_attention is not None:
        assert {"deltanet", "deltanet_heads", "deltanet_head_summary"} <= tables
        deltanet_layers = set(trace.read("deltanet").column("layer").to_pylist())
        assert deltanet_layers == {i for i, kind in enumerate(kinds) if kind == "linear_attention"}
        assert "state_recall" in tables  # the needle span's recall, for Gated DeltaNet and KDA alike
    else:
        assert "deltanet" not in tables


def test_a_capture_the_family_lacks_is_refused_in_one_line(family_checkpoints, tmp_path):
    _, folder, _ = family_checkpoints("olmoe")
    out = tmp_path / "trace"
    result = CliRunner().invoke(app, ["trace", "--model", str(folder), "--text", "abc", "--out", str(out), "--deltanet"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "olmoe: no linear-attention layer" in errors[0]
    assert not (out / "routing").exists()  # nothing written
