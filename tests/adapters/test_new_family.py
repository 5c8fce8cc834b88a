"""A new family is one adapter file: registering tests/adapters/toy_family.py (and editing nothing else) is enough
for `workbench trace` to load, capture and write a Qwen2-MoE checkpoint, with routing equal to transformers' own."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from support.toy import build_model, write_checkpoint
from typer.testing import CliRunner

from workbench.adapters import Adapter, UnsupportedArchitecture, get_adapter, unregister
from workbench.cli import app
from workbench.trace import open_trace

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def no_qwen2_moe():
    """The registry without a qwen2_moe family (one registered elsewhere in this process, e.g. by the docs'
    Adding a family example, is put back afterwards)."""
    from workbench.adapters import register, supported_model_types

    earlier = get_adapter("qwen2_moe") if "qwen2_moe" in supported_model_types() else None
    if earlier is not None:
        unregister(earlier)
    yield
    if earlier is not None and "qwen2_moe" not in supported_model_types():
        register(earlier)


@pytest.fixture
def toy_family(no_qwen2_moe):
    """Import the one adapter file (its register() call runs), and unregister it afterwards."""
    spec = importlib.util.spec_from_file_location("toy_family", Path(__file__).with_name("toy_family.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module.QWEN2_MOE
    finally:
        unregister(module.QWEN2_MOE)


@pytest.fixture
def qwen2_moe_checkpoint(tmp_path, tokenizer):
    from transformers import Qwen2MoeConfig

    config = Qwen2MoeConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                            num_hidden_layers=2, vocab_size=len(tokenizer), num_experts=8, num_experts_per_tok=2,
                            moe_intermediate_size=32, shared_expert_intermediate_size=32, pad_token_id=258,
                            bos_token_id=256, eos_token_id=257)
    model = build_model(config, seed=3)
    return model, write_checkpoint(tmp_path / "qwen2-moe", model, tokenizer)


def test_unregistered_family_is_refused_in_one_line(tmp_path, no_qwen2_moe, qwen2_moe_checkpoint):
    _, folder = qwen2_moe_checkpoint
    with pytest.raises(UnsupportedArchitecture):
        get_adapter("qwen2_moe")
    result = CliRunner().invoke(app, ["trace", "--model", str(folder), "--text", "abc", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "model_type 'qwen2_moe'" in result.output and "qwen3_next" in result.output


def test_one_adapter_file_makes_a_family_traceable(tmp_path, toy_family, qwen2_moe_checkpoint, tokenizer):
    model, folder = qwen2_moe_checkpoint
    assert get_adapter("qwen2_moe") is toy_family
    out, text = tmp_path / "trace", "one adapter file"
    result = CliRunner().invoke(app, ["trace", "--model", str(folder), "--text", text, "--out", str(out),
                                      "--router-logits", "--attention", "--attention-stride", "4"])
    assert result.exit_code == 0, result.output
    trace = open_trace(out)
    assert {"tokens", "routing", "router_logits", "attention"} <= set(trace.tables())
    assert trace.manifests()[0]["family"] == "qwen2_moe"

    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        reference = model(input_ids=ids, output_router_logits=True).router_logits  # [T, E] per layer
    routing = trace.read("routing").to_pandas().sort_values(["layer", "position"])
    for layer, logits in enumerate(reference):
        rows = routing[routing.layer == layer]
        ids_ref = torch.softmax(logits.double(), -1).topk(2, -1).indices.numpy()
        assert np.array_equal(np.stack(rows.topk_ids.to_numpy()), ids_ref)
        assert rows.shared_gate.notna().all()  # the shared-expert gate the adapter names was hooked


def test_an_adapter_for_another_class_is_refused(no_qwen2_moe, qwen2_moe_checkpoint):
    """The adapter's sites and kernel globals belong to one transformers class: loading as another is refused."""
    from workbench.adapters import register
    from workbench.loading import load_model

    _, folder = qwen2_moe_checkpoint
    wrong = register(Adapter(name="qwen2_moe", model_types=("qwen2_moe",), architecture="Qwen2MoeForSomethingElse"))
    try:
        with pytest.raises(UnsupportedArchitecture, match="loads as Qwen2MoeForCausalLM, but the qwen2_moe adapter"):
            load_model(str(folder))
    finally:
        unregister(wrong)
