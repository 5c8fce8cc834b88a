"""Loading from a sharded local checkpoint, the nano name, and clear errors for what cannot load."""

import json

import pytest
import torch

from workbench.adapters import UnsupportedArchitecture, get_adapter, supported_model_types
from workbench.loading import ModelNotAvailable, load_model


def test_sharded_checkpoint_loads_with_same_logits(next_checkpoint, tiny_next):
    assert (next_checkpoint / "model.safetensors.index.json").is_file()
    assert len(list(next_checkpoint.glob("model-*.safetensors"))) > 1
    loaded = load_model(str(next_checkpoint), dtype="float32")
    assert loaded.adapter.architecture == "Qwen3NextForCausalLM"
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.equal(loaded.model(input_ids=ids).logits, tiny_next(input_ids=ids).logits)
    facts = loaded.describe()
    assert facts["dtype"] == "float32" and facts["num_parameters"] == sum(p.numel() for p in tiny_next.parameters())


def test_qwen35_moe_checkpoint_loads(tmp_path, tiny_35moe, tokenizer):
    from support.toy import write_checkpoint

    folder = write_checkpoint(tmp_path / "q35", tiny_35moe, tokenizer)
    loaded = load_model(str(folder), dtype="bfloat16")
    assert loaded.adapter is get_adapter("Qwen3_5MoeForCausalLM")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_nano_loads():
    loaded = load_model("nano")
    assert loaded.adapter.architecture == "Qwen3NextForCausalLM"
    assert loaded.adapter.layer_kinds(loaded.model.config).count("full_attention") >= 2


def test_unknown_model_type_is_one_line_listing_the_supported(tmp_path, next_checkpoint):
    """An unknown model_type (which transformers itself cannot parse) and a known-to-transformers but unsupported one
    both end in one line naming it and every supported model_type."""
    for model_type, architecture in (("mystery", "MysteryForCausalLM"), ("llama", "LlamaForCausalLM")):
        folder = tmp_path / model_type
        folder.mkdir()
        config = json.loads((next_checkpoint / "config.json").read_text())
        config["model_type"], config["architectures"] = model_type, [architecture]
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(UnsupportedArchitecture) as error:
            load_model(str(folder))
        message = str(error.value)
        assert "\n" not in message and repr(model_type) in message and architecture in message
        assert all(name in message for name in supported_model_types())


def test_missing_path_fails_fast(tmp_path):
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        load_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match="no config.json"):
        load_model(str(tmp_path / "empty"))


def test_uncached_hub_id_fails_fast_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotAvailable, match="not in the local Hugging Face cache"):
        load_model("Qwen/Qwen3-Next-80B-A3B-Instruct")


def test_bad_options():
    with pytest.raises(ValueError, match="dtype takes auto"):
        load_model("nano", dtype="fp8")
    with pytest.raises(ValueError, match="either --device or --device-map"):
        load_model("nano", device="cpu", device_map="auto")


def test_registry_refuses_duplicates():
    from workbench.adapters import register

    with pytest.raises(ValueError, match="already registered"):
        register(get_adapter("Qwen3NextForCausalLM"))


def test_folder_without_tokenizer_or_weights_is_refused_clearly(tmp_path, next_checkpoint):
    import shutil

    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for path in next_checkpoint.iterdir():
        if not path.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(path, no_tokenizer / path.name)
    with pytest.raises(ModelNotAvailable, match="cannot load a tokenizer"):
        load_model(str(no_tokenizer))

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for path in next_checkpoint.iterdir():
        if "safetensors" not in path.name:
            shutil.copy(path, no_weights / path.name)
    with pytest.raises(ModelNotAvailable, match="cannot load weights"):
        load_model(str(no_weights))


def test_config_hash_ignores_where_the_checkpoint_lies(tiny_next):
    """The same config loaded from two folders hashes alike; a changed architecture field does not."""
    import copy

    from workbench.loading import config_hash

    here, there = copy.deepcopy(tiny_next.config), copy.deepcopy(tiny_next.config)
    here._name_or_path, there._name_or_path = "/tmp/a/checkpoint", "/srv/b/checkpoint"
    assert config_hash(here) == config_hash(there)
    there.num_experts_per_tok += 1
    assert config_hash(here) != config_hash(there)
