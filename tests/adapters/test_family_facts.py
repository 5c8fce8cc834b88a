"""The family facts a run manifest carries (adapters/facts.py), read off every family's tiny model and checked
against the numbers its tiny config was written with (workbench/adapters/tiny.py), so that pages never read raw
config keys, whose names differ by family."""

import pytest

from workbench.adapters import adapter_for_config
from workbench.adapters.facts import model_facts
from workbench.adapters.tiny import build_family_model

D, A = "linear_attention", "full_attention"
HYBRID_KINDS = [D, D, D, A]
# family -> (experts, top-k, heads per layer kind, layer kinds); hand-copied from the tiny configs
EXPECTED = {
    "qwen3_next": (32, 4, {A: {"query": 4, "key_value": 2}, D: {"key": 2, "value": 4}}, HYBRID_KINDS),
    "qwen3_5_moe": (32, 4, {A: {"query": 4, "key_value": 2}, D: {"key": 2, "value": 4}}, HYBRID_KINDS),
    "qwen3_5": (None, None, {A: {"query": 4, "key_value": 2}, D: {"key": 2, "value": 4}}, HYBRID_KINDS),
    "kimi_linear": (16, 4, {A: {"query": 4, "key_value": 4}, D: {"key": 4, "value": 4}}, HYBRID_KINDS),
    "qwen3_moe": (16, 4, {A: {"query": 4, "key_value": 2}}, [A, A]),
    "olmoe": (16, 4, {A: {"query": 4, "key_value": 2}}, [A, A]),
    "mixtral": (8, 2, {A: {"query": 4, "key_value": 2}}, [A, A]),
    "deepseek_v3": (16, 4, {A: {"query": 4, "key_value": 4}}, [A, A, A]),
}


@pytest.mark.parametrize("family", EXPECTED)
def test_facts_equal_the_tiny_configs(family):
    model = build_family_model(family)
    adapter = adapter_for_config(model.config)
    experts, top_k, heads, kinds = EXPECTED[family]
    facts = model_facts(adapter, model)
    assert (facts["num_experts"], facts["top_k"], facts["heads"], facts["layer_kinds"]) == (experts, top_k, heads, kinds)
    linear = "KDA" if family == "kimi_linear" else "DeltaNet"
    assert facts["layer_labels"] == [f"L{i} {linear if k == D else 'attention'}" for i, k in enumerate(kinds)]
    dense = {"deepseek_v3": [0], "kimi_linear": [0]}.get(family, [])  # first layers dense there
    assert facts["moe_layers"] == ([] if experts is None else [i for i in range(len(kinds)) if i not in dense])


def test_an_mtp_layer_is_labelled_after_the_trunk():
    model = build_family_model("qwen3_next")
    facts = model_facts(adapter_for_config(model.config), model, mtp_layers=1)
    assert facts["layer_labels"] == ["L0 DeltaNet", "L1 DeltaNet", "L2 DeltaNet", "L3 attention", "MTP"]
