"""Long-context probes at tiny sizes on a random-init tiny nano (nano tokenizer): each writes the table it promises
with values in range; layer ablation changes the model only inside its block and matches an independent
reference (the mixer's output projection zeroed in a copy)."""

import copy

import numpy as np
import pytest
import torch
from transformers import Qwen3NextForCausalLM

from workbench.adapters import adapter_for_config
from workbench.analysis import needle
from workbench.analysis.db import Scope, TraceDB
from workbench.loading import LoadedModel
from workbench.nano.model_config import nano_config
from workbench.nano.tokenizer import build_tokenizer
from workbench.probes.layer_ablation import ablate_layers, ablation_conditions, run_layer_ablation
from workbench.probes.long_context import answers_exact
from workbench.probes.needle_sweep import run_needle_sweep, sweep_prompt, sweep_report
from workbench.probes.state_capacity import run_state_capacity
from workbench.trace import open_trace

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def tiny_nano():
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = Qwen3NextForCausalLM(nano_config(len(tokenizer), tiny=True, initializer_range=0.5)).eval()
    return LoadedModel(model, tokenizer, adapter_for_config(model.config), "tiny-nano", "memory", None)


def _ids(loaded, n=40):
    return torch.randint(5, len(loaded.tokenizer), (2, n), generator=torch.Generator().manual_seed(1))


def test_answers_exact_is_the_teacher_forced_argmax_by_hand():
    logits = torch.zeros(5, 10)
    logits[0, 3], logits[1, 4], logits[2, 9], logits[3, 1] = 1, 1, 1, 1  # predictions 3 4 9 1 0
    ids = torch.tensor([0, 3, 4, 7, 1])
    assert answers_exact(logits, ids, [(1, 3), (2, 4), (4, 5)]) == [True, False, True]


def test_needle_sweep_writes_its_table_in_range(tmp_path, tiny_nano):
    run_id, table = run_needle_sweep(tiny_nano, tmp_path, lengths=(64, 96), depths=(0.0, 1.0), prompts=2,
                                     deltanet_path="torch", progress=False)
    df = open_trace(tmp_path).read("needle_sweep", run_id=run_id).to_pandas()
    kinds = tiny_nano.adapter.layer_kinds(tiny_nano.model.config)
    config = tiny_nano.model.config
    assert set(df.context_length) == {64, 96} and set(df.needle_depth) == {0.0, 1.0}
    assert (df.prompts == 2).all() and df.exact_match.between(0, 1).all()
    attention = df[df.layer_kind == "full_attention"]
    deltanet = df[df.layer_kind == "linear_attention"]
    assert sorted(set(attention.layer)) == [i for i, k in enumerate(kinds) if k == "full_attention"]
    assert sorted(set(deltanet.layer)) == [i for i, k in enumerate(kinds) if k == "linear_attention"]
    assert len(attention) == 4 * kinds.count("full_attention") * config.num_attention_heads
    assert len(deltanet) == 4 * kinds.count("linear_attention") * config.linear_num_value_heads
    assert attention.needle_mass.between(0, 1).all() and attention.deltanet_needle_contribution.isna().all()
    assert deltanet.needle_mass.isna().all() and (deltanet.deltanet_needle_contribution >= 0).all()
    assert deltanet.state_retention.between(-1 - 1e-6, 1 + 1e-6).all() and (deltanet.state_retention_ratio >= 0).all()


def test_needle_sweep_needle_mass_is_eager_attention_on_the_needle(tmp_path, tiny_nano):
    """The probe's needle_mass (analysis.needle.head_needle_mass at the rows that predict the answer) against
    transformers' own eager attention probabilities of the same prompt, summed over the needle's keys and averaged
    over those rows; the probe's printed report quotes analysis.needle.sweep_head_mass of the run it wrote."""
    run_id, table = run_needle_sweep(tiny_nano, tmp_path, lengths=(64,), depths=(0.5,), prompts=1,
                                     deltanet_path="torch", progress=False)
    prompt = sweep_prompt(tiny_nano.tokenizer, 64, 0.5, 0, 0)
    eager = copy.deepcopy(tiny_nano.model)
    eager.config._attn_implementation = "eager"
    with torch.inference_mode():
        probabilities = eager(input_ids=torch.tensor([prompt.ids]), output_attentions=True, use_cache=False).attentions
    start, end = prompt.answers[-1]
    rows, span = list(range(start - 1, end - 1)), prompt.span("needle")
    kinds = tiny_nano.adapter.layer_kinds(tiny_nano.model.config)
    layers = [i for i, kind in enumerate(kinds) if kind == "full_attention"]
    frame = table.to_pandas()
    assert len(probabilities) == len(layers) and rows[0] >= span.end_token
    for layer, weights in zip(layers, probabilities):  # weights [1, H, T, T]
        expected = weights[0][:, rows, span.start_token:span.end_token].sum(-1).mean(-1)  # [H]
        got = frame[frame.layer == layer].sort_values("head").needle_mass.to_numpy()
        assert got == pytest.approx(expected.numpy(), abs=1e-5)
    report = sweep_report(str(tmp_path), run_id)
    best = needle.max_head(needle.sweep_head_mass(TraceDB(tmp_path), Scope(run_id)))
    assert best.layer.tolist() == layers
    for row in best.itertuples():
        line = next(x for x in report.splitlines() if x.split()[:2] == [str(row.layer), str(row.head)])
        assert line.split()[2] == f"{row.mass:.3f}"


def test_probe_prompts_beyond_the_position_limit_are_refused_before_any_forward(tmp_path, tiny_nano, monkeypatch):
    """The needle sweep's longest cell (96 tokens + the question and answer) and the ablation's 96-token passkey
    prompts against a limit lowered to 80 tokens: one line naming the prompt, no forward, nothing written."""
    monkeypatch.setattr(tiny_nano.model.config, "max_position_embeddings", 80)
    forwards = []
    handle = tiny_nano.model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        longest = sweep_prompt(tiny_nano.tokenizer, 96, 1.0, 0, 0)
        with pytest.raises(ValueError) as error:
            run_needle_sweep(tiny_nano, tmp_path / "s", lengths=(64, 96), depths=(0.0, 1.0), progress=False)
        assert str(error.value).startswith(f"prompt {longest.prompt_id!r} is {len(longest.ids)} tokens, beyond the "
                                           "model's max_position_embeddings (80)") and "\n" not in str(error.value)
        with pytest.raises(ValueError, match="beyond the model's max_position_embeddings"):
            run_layer_ablation(tiny_nano, tmp_path / "a", suites=(("passkey", 96),), prompts=1, progress=False)
    finally:
        handle.remove()
    assert forwards == [] and not (tmp_path / "s").exists() and not (tmp_path / "a").exists()


def test_state_capacity_writes_its_table_in_range(tmp_path, tiny_nano):
    run_id, _ = run_state_capacity(tiny_nano, tmp_path, pair_counts=(1, 4), contexts=(0, 96), prompts=2,
                                   deltanet_path="torch", progress=False)
    df = open_trace(tmp_path).read("state_capacity", run_id=run_id).to_pandas()
    kinds = tiny_nano.adapter.layer_kinds(tiny_nano.model.config)
    assert set(df.layer) == {i for i, k in enumerate(kinds) if k == "linear_attention"}
    for (pairs, context), cell in df.groupby(["pairs", "context_length"]):
        assert sorted(set(cell.keys_after)) == list(range(pairs))  # one row per planted pair and layer
        assert len(cell) == pairs * kinds.count("linear_attention")
    assert df.accuracy.between(0, 1).all() and (df.prompts == 2).all()
    assert df.retention_cos.between(-1 - 1e-6, 1 + 1e-6).all() and (df.retention_ratio >= 0).all()
    assert df.recall_cos.between(-1 - 1e-6, 1 + 1e-6).all()
    # the last planted key is read right after its own write when nothing follows it but the recall cue: close to 1
    assert set(df.context_length) == {0, 96}


def test_layer_ablation_writes_labelled_rows(tmp_path, tiny_nano):
    run_id, _ = run_layer_ablation(tiny_nano, tmp_path, suites=(("passkey", 64), ("recall", 96)), prompts=3,
                                   modes=("zero",), single_layers=False, progress=False)
    df = open_trace(tmp_path).read("layer_ablation", run_id=run_id).to_pandas()
    assert (df.intervention == "ablation").all()
    assert df.condition.tolist() == ["none", "all full_attention", "all linear_attention"] * 2
    assert df.exact_match.between(0, 1).all() and df.accuracy_drop.between(-1, 1).all()
    none = df[df.condition == "none"]
    assert (none.accuracy_drop == 0).all() and none["mode"].isna().all()
    manifest = open_trace(tmp_path).manifests()[0]
    assert manifest["probe"]["intervention"] is True


def test_ablation_conditions_cover_kinds_and_single_layers():
    kinds = ["linear_attention", "linear_attention", "full_attention"]
    got = ablation_conditions(kinds, modes=("zero",))
    assert got == [("none", [], None), ("all full_attention", [2], "zero"), ("all linear_attention", [0, 1], "zero"),
                   ("layer 0", [0], "zero"), ("layer 1", [1], "zero"), ("layer 2", [2], "zero")]


@torch.inference_mode()
def test_zero_ablation_equals_zeroed_output_projections_and_restores(tiny_nano):
    model, adapter = tiny_nano.model, tiny_nano.adapter
    ids = _ids(tiny_nano)
    before = model(input_ids=ids).logits
    reference = copy.deepcopy(model)
    for layer in (0, 3):  # a DeltaNet and the full-attention layer: their mixers output exactly 0
        block = reference.model.layers[layer]
        projection = block.linear_attn.out_proj if hasattr(block, "linear_attn") else block.self_attn.o_proj
        projection.weight.zero_()
    with ablate_layers(model, adapter, [0, 3], "zero") as layers:
        ablated = model(input_ids=ids).logits
    assert layers == [0, 3]
    torch.testing.assert_close(ablated, reference(input_ids=ids).logits, atol=1e-6, rtol=0)
    assert not torch.allclose(ablated, before)
    assert torch.equal(model(input_ids=ids).logits, before)  # restored on exit


@torch.inference_mode()
def test_mean_ablation_outputs_the_sequence_mean_and_restores_after_an_error(tiny_nano):
    model, adapter = tiny_nano.model, tiny_nano.adapter
    ids = _ids(tiny_nano)
    before = model(input_ids=ids).logits
    block = model.model.layers[1].linear_attn
    clean = []
    observer = block.register_forward_hook(lambda m, a, out: clean.append(out.clone()))
    model(input_ids=ids)
    observer.remove()
    seen = []
    with pytest.raises(RuntimeError, match="inside"):
        with ablate_layers(model, adapter, [1], "mean"):
            observer = block.register_forward_hook(lambda m, a, out: seen.append(out.clone()))  # after the ablation
            model(input_ids=ids)
            raise RuntimeError("an error inside the intervention")
    observer.remove()
    out = seen[0]  # [B, T, hidden]: every token holds the same row
    assert torch.equal(out, out[:, :1].expand_as(out))
    torch.testing.assert_close(out[:, 0], clean[0].mean(1), atol=1e-6, rtol=1e-5)  # the unmodified output's mean
    assert torch.equal(model(input_ids=ids).logits, before)  # restored after the error
    with pytest.raises(ValueError, match="ablation mode"):
        with ablate_layers(model, adapter, [1], "noise"):
            pass
    with pytest.raises(ValueError, match="no attention or DeltaNet block"):
        with ablate_layers(model, adapter, [99], "zero"):
            pass
    assert np.isfinite(before.numpy()).all()
