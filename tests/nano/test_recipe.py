"""The nano's lab (nano/ at the repository root, not installed): the training smoke tests, the seed sweep and the
evaluation pieces (CPU, seconds)."""

import json
import random

import numpy as np
import pytest
import torch
from nano import evaluate, sweep, train, training_data
from scipy.spatial.distance import jensenshannon
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3NextForCausalLM

from workbench.nano import data
from workbench.nano import tokenizer as tk
from workbench.nano.model_config import check_nano_structure, nano_config

pytestmark = pytest.mark.filterwarnings("ignore")


def test_generalized_js_matches_scipy_and_bounds():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(16), size=3), rng.dirichlet(np.ones(16), size=3)  # [L=3, E=16] each
    ours = evaluate.generalized_js(np.stack([p, q]))  # [L]
    reference = [jensenshannon(p[l], q[l], base=2) ** 2 for l in range(3)]
    np.testing.assert_allclose(ours, reference, atol=1e-10)
    np.testing.assert_allclose(evaluate.generalized_js(np.stack([p, p, p])), 0.0, atol=1e-12)
    one_hot = np.eye(4)[:, None, :]  # 4 domains, 1 layer, disjoint experts
    np.testing.assert_allclose(evaluate.generalized_js(one_hot), [2.0])


def test_greedy_batch_equals_single_rows_and_generate(hf_tokenizer):
    torch.manual_seed(0)
    model = Qwen3NextForCausalLM(nano_config(len(hf_tokenizer), tiny=True, initializer_range=0.5)).eval()
    records = data.heldout_records("copy_16", 1, 2) + data.heldout_records("arithmetic_add", 1, 2)
    prompts = [data.encode_for_exact_match(hf_tokenizer, r)[0] for r in records]
    device = torch.device("cpu")
    batched = evaluate.greedy_continue(model, prompts, 5, device)
    assert batched == [evaluate.greedy_continue(model, [p], 5, device)[0] for p in prompts]
    for prompt, ours in zip(prompts, batched):
        reference = model.generate(torch.tensor([prompt]), max_new_tokens=5, do_sample=False)[0, len(prompt):]
        until_eos = ours[: ours.index(tk.EOS_ID) + 1] if tk.EOS_ID in ours else ours
        assert reference.tolist()[: len(until_eos)] == until_eos


def test_train_smoke_saves_loadable_bf16_checkpoint(tmp_path):
    out = tmp_path / "nano-tiny"
    summary = train.main(["--out", str(out), "--tiny", "--minutes", "30", "--max-steps", "3", "--device", "cpu",
                          "--seed", "0", "--mtp-weight", "0.3"])  # the step count, not the clock, ends it
    assert summary["steps"] == 3 and np.isfinite(summary["final"]["loss"])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3] and all(np.isfinite(e["loss"]) for e in log)
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert next(model.parameters()).dtype == torch.bfloat16
    check_nano_structure(model.config, min_experts=32)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = torch.tensor([tokenizer("the pass key is 12345 .").input_ids])
    with torch.no_grad():
        assert torch.isfinite(model.float()(input_ids=ids).logits).all()
    report = evaluate.evaluate(str(out), n=2, device="cpu", suites=["copy_8", "arithmetic_add"], route_tokens=1024)
    assert set(report["suites"]) == {"copy_8", "arithmetic_add"}
    assert all(0.0 <= row["exact"] <= 1.0 for row in report["suites"].values())
    routing = report["routing"]
    assert 0.0 < routing["js_bits_random_init"] <= routing["max_bits"] and routing["ratio"] > 0
    assert "routing JS" in evaluate.format_table(report)
    # the MTP head was trained beside the trunk and saved as its own indexed shard; evaluation measured it
    assert all("mtp_loss" in entry and np.isfinite(entry["mtp_loss"]) for entry in log)
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert {shard for name, shard in index.items() if name.startswith("mtp.")} == {"model-00002-of-00002.safetensors"}
    mtp = report["mtp"]
    assert set(mtp["by_domain"]) == set(data.DOMAINS)
    assert all(0.0 <= row["accepted"] <= 1.0 and row["rows"] > 0 for row in mtp["by_domain"].values())
    assert "MTP greedy acceptance" in evaluate.format_table(report)


def test_train_continues_from_a_checkpoint(tmp_path):
    first = tmp_path / "first"
    train.main(["--out", str(first), "--tiny", "--minutes", "30", "--max-steps", "1", "--device", "cpu"])
    second = tmp_path / "second"
    train.main(["--out", str(second), "--tiny", "--minutes", "30", "--max-steps", "0", "--device", "cpu",
                "--init-from", str(first)])  # zero steps: the continued model is the first one, saved again
    a = AutoModelForCausalLM.from_pretrained(str(first))
    b = AutoModelForCausalLM.from_pretrained(str(second))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(SystemExit, match="not a checkpoint folder"):
        train.main(["--out", str(tmp_path / "x"), "--tiny", "--init-from", str(tmp_path / "missing")])


def test_row_length_curriculum():
    rng = random.Random(0)
    assert {train.row_length(rng, 0.05, 4096) for _ in range(200)} == {256, 512}
    assert {train.row_length(rng, 0.5, 4096) for _ in range(400)} == set(train.ROW_LENGTHS)
    assert max(train.row_length(rng, 0.5, 1024) for _ in range(200)) == 1024


def test_sweep_keeps_the_best_seed_and_reports_on_another_seed(tmp_path):
    with pytest.raises(SystemExit, match="must differ"):
        sweep.main(["--out", str(tmp_path / "x"), "--select-seed", "0", "--report-seed", "0"])
    result = sweep.main(["--out", str(tmp_path / "s"), "--seeds", "0", "1", "--tiny", "--max-steps", "2",
                         "--device", "cpu", "--select-n", "1", "--report-n", "1", "--route-tokens", "512"])
    best = tmp_path / "s" / "best"
    select = {s: json.loads((best if s == result["best_seed"] else tmp_path / "s" / f"seed{s}")
                            .joinpath("select.json").read_text()) for s in (0, 1)}
    assert result["selection"]["scores"] == {s: sweep.selection_score(r) for s, r in select.items()}
    assert all(r["seed_space"] == "nano-heldout:1" for r in select.values())
    assert max(result["selection"]["scores"].values()) == result["selection"]["scores"][result["best_seed"]]
    report = json.loads((best / "eval.json").read_text())
    assert report["seed_space"] == "nano-heldout:0" and report["routing"]["tokens_per_domain"] == 512
    assert AutoModelForCausalLM.from_pretrained(str(best)).config.num_experts == 32
    with pytest.raises(SystemExit, match="exists"):  # a kept model is never overwritten
        sweep.main(["--out", str(tmp_path / "s"), "--seeds", "0", "--tiny", "--device", "cpu"])


def test_training_stream_deterministic_and_disjoint_from_heldout():
    vocab = tk.build_vocab()
    a = training_data.training_batch(training_data.training_rng(0, 0), vocab, 4, 512)
    assert a == training_data.training_batch(training_data.training_rng(0, 0), vocab, 4, 512)
    assert a != training_data.training_batch(training_data.training_rng(1, 0), vocab, 4, 512)
    assert a != training_data.training_batch(training_data.training_rng(0, 1), vocab, 4, 512)


def test_training_rows_exact_length_with_answer_flags():
    vocab = tk.build_vocab()
    ids, flags = training_data.training_batch(training_data.training_rng(0, 3), vocab, 6, 1025)
    assert all(len(row) == 1025 for row in ids) and all(len(row) == 1025 for row in flags)
    flat_ids, flat_flags = np.array(ids).ravel(), np.array(flags).ravel()
    assert flat_ids.max() < len(vocab) and (flat_ids == tk.BOS_ID).sum() >= 6
    digit_ids, stop_ids = {vocab[d] for d in tk.DIGITS}, {vocab[" ;"], vocab[" ."], vocab["\n"]}
    flagged = flat_ids[flat_flags == 1]
    assert len(flagged) > 0 and np.mean([t in digit_ids for t in flagged]) > 0.4
    # every run of flagged tokens ends with its stop token
    run_ends = np.flatnonzero((flat_flags[:-1] == 1) & (flat_flags[1:] == 0))
    assert set(flat_ids[run_ends].tolist()) <= stop_ids
