"""The shipped nano checkpoint: loads offline through the ordinary loader, has the release's structure,
fits the size budget, and really retrieves a pass key planted in 1,024 tokens of filler."""

import json

import pytest
import torch
from nano import evaluate
from transformers import AutoTokenizer

from workbench.loading import load_model
from workbench.nano import data
from workbench.loading import SHIPPED_NANO as SHIPPED
from workbench.nano.model_config import MAX_CHECKPOINT_BYTES, MAX_MTP_BYTES, check_nano_structure


@pytest.fixture(scope="module")
def nano():
    return load_model("nano", dtype="float32", device="cpu")


def test_loads_offline_through_the_checkpoint_path(nano, monkeypatch):
    assert nano.resolved == str(SHIPPED)
    assert nano.adapter.architecture == "Qwen3NextForCausalLM"
    assert json.loads((SHIPPED / "model.safetensors.index.json").read_text())["weight_map"]  # sharded like a release
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert AutoTokenizer.from_pretrained(SHIPPED).get_vocab() == nano.tokenizer.get_vocab()


def test_config_has_the_release_structure_and_fits_the_budget(nano):
    counts = check_nano_structure(nano.model.config)
    assert counts["total"] == sum(p.numel() for p in nano.model.parameters())
    index = json.loads((SHIPPED / "model.safetensors.index.json").read_text())["weight_map"]
    mtp_shards = {shard for name, shard in index.items() if name.startswith("mtp.")}
    assert len(mtp_shards) == 1 and mtp_shards.isdisjoint(s for n, s in index.items() if not n.startswith("mtp."))
    assert sum(f.stat().st_size for f in SHIPPED.iterdir() if f.name not in mtp_shards) <= MAX_CHECKPOINT_BYTES
    assert sum((SHIPPED / shard).stat().st_size for shard in mtp_shards) <= MAX_MTP_BYTES
    card = (SHIPPED / "README.md").read_text()
    assert f"{counts['total']:,}" in card and f"{counts['active']:,}" in card


def test_passkey_at_1024_tokens(nano):
    """20 fixed held-out prompts (held-out seed 0): greedy continuation must be the planted key and the ' .' after
    it. The truth comes from the generator, not from the model."""
    records = data.heldout_records("passkey_1024", seed=0, n=20)
    assert all(r["n_tokens"] == 1024 for r in records)
    assert all(r["answer"] == r["text"][s["start"]:s["end"]] for r in records for s in r["spans"]
               if s["name"] == "needle")  # the answer is the planted needle
    with torch.inference_mode():
        results = evaluate.exact_match(nano.model, nano.tokenizer, records, torch.device("cpu"), batch_tokens=8192)
    accuracy = sum(r["exact"] for r in results) / len(results)
    assert accuracy >= 0.8, [(r["answer"], r["predicted"]) for r in results if not r["exact"]]
