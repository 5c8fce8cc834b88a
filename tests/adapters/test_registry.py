"""The adapter registry and layer kinds: read from the config in its three forms, one registry call per family."""

from types import SimpleNamespace

import pytest

from workbench.adapters import (
    Adapter,
    RouterSite,
    UnsupportedArchitecture,
    adapter_for_config,
    all_full_attention,
    get_adapter,
    layer_types_field,
    register,
    registered_adapters,
    supported_model_types,
)

FAMILIES = {"qwen3_next", "qwen3_5", "qwen3_5_moe", "kimi_linear", "qwen3_moe", "olmoe", "mixtral", "deepseek_v3"}


def test_every_family_file_registered_its_adapter():
    assert FAMILIES <= {a.name for a in registered_adapters()}
    for name in FAMILIES:
        adapter = get_adapter(name)
        assert get_adapter(adapter.architecture) is adapter
        assert all(get_adapter(t) is adapter for t in adapter.model_types + adapter.wrapper_model_types)


def test_layer_kinds_from_the_config_in_each_form():
    hybrid = SimpleNamespace(num_hidden_layers=4, layer_types=["linear_attention"] * 3 + ["full_attention"])
    assert layer_types_field(hybrid) == hybrid.layer_types
    interval = SimpleNamespace(num_hidden_layers=6, layer_types=None, full_attention_interval=3)
    assert layer_types_field(interval) == ["linear_attention", "linear_attention", "full_attention"] * 2
    assert all_full_attention(SimpleNamespace(num_hidden_layers=2)) == ["full_attention"] * 2
    with pytest.raises(ValueError, match="unknown kinds \\['sliding_attention'\\]"):
        layer_types_field(SimpleNamespace(num_hidden_layers=1, layer_types=["sliding_attention"]))
    with pytest.raises(ValueError, match="neither layer_types nor full_attention_interval"):
        layer_types_field(SimpleNamespace(num_hidden_layers=1))
    short = SimpleNamespace(model_type="qwen3_next", num_hidden_layers=5, layer_types=hybrid.layer_types)
    with pytest.raises(ValueError, match="4 layer kinds for 5 layers"):
        get_adapter("qwen3_next").layer_kinds(short)


def test_wrapper_config_resolves_to_its_text_family():
    text = SimpleNamespace(model_type="qwen3_5_text", num_hidden_layers=1, layer_types=["full_attention"])
    wrapper = SimpleNamespace(model_type="qwen3_5", text_config=text)
    adapter = adapter_for_config(wrapper)
    assert adapter.name == "qwen3_5" and adapter.text_config(wrapper) is text
    assert adapter.layer_kinds(wrapper) == ["full_attention"]


def test_duplicates_and_bad_sites_raise():
    with pytest.raises(ValueError, match="already registered"):
        register(get_adapter("qwen3_next"))
    with pytest.raises(ValueError, match="already registered"):
        register(Adapter(name="another", model_types=("mixtral",), architecture="AnotherForCausalLM"))
    with pytest.raises(ValueError, match="router scoring 'relu' is unknown"):
        RouterSite(scoring="relu")


def test_unknown_model_type_is_one_line_listing_every_supported_one():
    with pytest.raises(UnsupportedArchitecture) as error:
        adapter_for_config(SimpleNamespace(model_type="llama", architectures=["LlamaForCausalLM"]))
    message = str(error.value)
    assert "\n" not in message and "'llama' (LlamaForCausalLM)" in message
    assert all(model_type in message for model_type in supported_model_types())
