"""The nano model's tokenizer, synthetic data and config (workbench/nano/, the library's part; CPU, seconds)."""

import json

import pytest
from transformers import AutoTokenizer

from workbench.nano import data
from workbench.nano import tokenizer as tk
from workbench.nano.model_config import check_nano_structure, nano_config

pytestmark = pytest.mark.filterwarnings("ignore")
SHORT_SUITES = ["passkey_1024", "assoc_recall_8pairs_512", "assoc_recall_16pairs_compact", "copy_16",
                "arithmetic_add", "arithmetic_mul", "code_256", "prose_512"]


@pytest.mark.parametrize("suite", SHORT_SUITES)
def test_heldout_records_deterministic_by_seed(suite):
    assert data.heldout_records(suite, 0, 3) == data.heldout_records(suite, 0, 3)
    texts_a = [r["text"] for r in data.heldout_records(suite, 0, 3)]
    texts_b = [r["text"] for r in data.heldout_records(suite, 1, 3)]
    assert texts_a != texts_b
    assert len(set(texts_a)) == 3  # records within a suite differ too


@pytest.mark.parametrize("n_tokens", [256, 1024, 4096])
def test_passkey_needle_span_and_exact_length(hf_tokenizer, n_tokens):
    for record in data.heldout_records("passkey_1024", 5, 1) + [data.generate("passkey", i, n_tokens=n_tokens)
                                                               for i in range(5)]:
        spans = {s["name"]: s for s in record["spans"]}
        needle = record["text"][spans["needle"]["start"]: spans["needle"]["end"]]
        assert needle.isdigit() and len(needle) == 5 and needle == record["answer"]
        assert record["text"][: spans["needle"]["start"]].endswith("the pass key is ")
        assert record["prompt"].endswith("what is the pass key ? the pass key is ")
        ids = hf_tokenizer(record["text"]).input_ids
        assert len(ids) - 1 == record["n_tokens"]
        if record["id"].startswith("passkey-"):
            assert record["n_tokens"] == n_tokens
        enc = hf_tokenizer(record["text"], return_offsets_mapping=True)
        needle_tokens = [t for t, (s, e) in enumerate(enc.offset_mapping)
                         if e > s and s >= spans["needle"]["start"] and e <= spans["needle"]["end"]]
        assert [hf_tokenizer.convert_ids_to_tokens(enc.input_ids[t]) for t in needle_tokens] == list(needle)


def test_passkey_depth_is_respected():
    def needle_fraction(record):
        return next(s["start"] for s in record["spans"] if s["name"] == "needle") / len(record["text"])

    assert needle_fraction(data.generate("passkey", 0, n_tokens=2048, depth=0.1)) < 0.15
    assert needle_fraction(data.generate("passkey", 0, n_tokens=2048, depth=0.9)) > 0.8


@pytest.mark.parametrize("suite,expected", [("assoc_recall_8pairs_512", 512), ("assoc_recall_8pairs_2048", 2048),
                                            ("code_256", 256), ("prose_512", 512)])
def test_token_counts_near_requested(hf_tokenizer, suite, expected):
    for record in data.heldout_records(suite, 0, 4):
        n = len(hf_tokenizer(record["text"]).input_ids) - 1
        assert n == record["n_tokens"]
        assert abs(n - expected) <= (8 if suite.startswith("code") else 0)


def test_assoc_and_code_spans(hf_tokenizer):
    for record in data.heldout_records("assoc_recall_8pairs_512", 0, 5) + data.heldout_records("code_256", 0, 5):
        text, spans = record["text"], record["spans"]
        needle = next(text[s["start"]: s["end"]] for s in spans if s["name"] == "needle")
        query = next(text[s["start"]: s["end"]].strip() for s in spans if s["name"] == "query")
        assert needle == record["answer"] and needle.isdigit()
        if record["label"] == "assoc_recall":
            pairs = [text[s["start"]: s["end"]].strip() for s in spans if s["name"].startswith("pair_")]
            assert len(pairs) == 8 and f"{query} = {needle}" in pairs
        else:
            assert f"\n{query} = {needle}\n" in text


@pytest.mark.parametrize("suite", SHORT_SUITES)
def test_prompt_answer_and_tokenizer_round_trip(hf_tokenizer, suite):
    for record in data.heldout_records(suite, 2, 3):
        text = record["text"]
        ids = hf_tokenizer(text).input_ids
        assert ids[0] == tk.BOS_ID and tk.UNK_ID not in ids
        assert hf_tokenizer.convert_ids_to_tokens(ids)[1:] == tk.split_pieces(text)
        assert hf_tokenizer.decode(ids, skip_special_tokens=True) == text
        if record["answer"] is None:
            assert record["label"] == "prose" and record["prompt"] == text
            continue
        answer_span = [s for s in record["spans"] if s["name"] == "answer"][-1]
        assert record["prompt"] + record["answer"] == text[: answer_span["end"]]
        prompt_ids, gold = data.encode_for_exact_match(hf_tokenizer, record)
        assert ids[: len(prompt_ids) + len(gold)] == prompt_ids + gold


def test_digits_are_single_tokens_and_vocab_small(hf_tokenizer):
    assert hf_tokenizer.convert_ids_to_tokens(hf_tokenizer("the pass key is 90210 .").input_ids) == \
        ["<bos>", "the", " pass", " key", " is", " ", "9", "0", "2", "1", "0", " ."]
    assert len(hf_tokenizer) == len(tk.build_vocab()) <= 4096
    assert tk.build_vocab() == tk.build_vocab()
    with pytest.raises(ValueError):
        tk.split_pieces("tab\tseparated")


def test_auto_tokenizer_from_saved_folder_offline(tmp_path, monkeypatch, hf_tokenizer):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tk.save_tokenizer(tmp_path)
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    text = data.heldout_records("code_256", 0, 1)[0]["text"]
    assert loaded(text).input_ids == hf_tokenizer(text).input_ids
    assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id) == (tk.BOS_ID, tk.EOS_ID, tk.PAD_ID)
    assert loaded.decode(loaded(text).input_ids, skip_special_tokens=True) == text


def test_config_structure_and_size():
    config = nano_config(len(tk.build_vocab()))
    counts = check_nano_structure(config)
    assert counts["bf16_bytes"] <= 32_000_000 and 10e6 < counts["total"] < 16e6
    assert counts["active"] < counts["total"] / 4
    assert config.layer_types.count("full_attention") == 2 and config.num_experts_per_tok * 16 <= config.num_experts
    check_nano_structure(nano_config(100, tiny=True), min_experts=32)
    with pytest.raises(ValueError, match="at least 128 experts, got 32"):
        check_nano_structure(nano_config(100, tiny=True))
    bad = nano_config(100, num_experts_per_tok=16, mlp_only_layers=[0], layer_types=["linear_attention"] * 8,
                      hidden_size=512)
    with pytest.raises(ValueError) as err:
        check_nano_structure(bad)
    for fragment in ("3:1", "two full-attention", "1/16", "sparse MoE", "exceeds"):
        assert fragment in str(err.value)


def test_write_probe_prompts(tmp_path):
    paths = data.write_probe_prompts(tmp_path / "prompts", seed=7, n_per_task=2)
    assert {p.stem for p in paths} == set(data.HELDOUT_SUITES)
    lines = (tmp_path / "prompts" / "copy_8.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records == data.heldout_records("copy_8", 7, 2)
    assert {"id", "text", "label", "spans", "answer", "prompt"} <= set(records[0])


def test_shipped_prompt_files_are_current_and_valid(tmp_path):
    """datasets/prompts/ is exactly what probes/write_prompts.py writes, and every file passes the
    prompt reader's checks (unique ids, spans inside the text, unique span names)."""
    import subprocess
    import sys
    from pathlib import Path

    from workbench.inputs.prompts import read_prompts

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "probes" / "write_prompts.py"), "--out", str(tmp_path)], check=True,
                   cwd=root)
    shipped = root / "datasets" / "prompts"
    for fresh in sorted(tmp_path.rglob("*.jsonl")):
        relative = fresh.relative_to(tmp_path)
        assert (shipped / relative).read_bytes() == fresh.read_bytes(), f"{relative} is stale"
        for prompt in read_prompts(fresh):
            names = [span["name"] for span in prompt.extra.get("spans", [])]
            assert len(names) == len(set(names))


def test_only_the_records_answer_is_a_query_span():
    record = data.generate("arithmetic", 3, n_problems=3)  # three answer spans: answer_1, answer_2, answer
    queries = [s for s in record["spans"] if s.get("query")]
    assert [s["name"] for s in queries] == ["answer"]
    assert record["text"][queries[0]["start"]:queries[0]["end"]] == record["answer"]
    assert [s["name"] for s in record["spans"]] == ["answer_1", "answer_2", "answer"]
    assert not any(s.get("query") for s in data.generate("prose", 3)["spans"])
