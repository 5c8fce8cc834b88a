"""The routing-specialisation probe's tables against values worked out by hand on the hand-written trace
(tests/hand_trace.py, run A, MoE layer 0: label x selects experts 0,1 | 0,2 | 1,0 and label y 0,3 | 3,2)."""

import math

import pytest

from workbench.analysis.db import TraceDB
from workbench.probes.routing_specialization import nano_domain_prompts, specialization_tables


@pytest.fixture(scope="module")
def tables(hand_trace):
    root, runs = hand_trace
    return specialization_tables(TraceDB(root), runs["a"], top=3, min_count=1)


def test_label_js_by_hand(tables):
    # p_x = [1/2, 1/3, 1/6, 0], p_y = [1/4, 0, 1/4, 1/2], m = [3/8, 1/6, 5/24, 1/4]
    kl_x = 0.5 * math.log2(0.5 / 0.375) + (1 / 3) * math.log2(2) + (1 / 6) * math.log2((1 / 6) / (5 / 24))
    kl_y = 0.25 * math.log2(0.25 / 0.375) + 0.25 * math.log2(0.25 / (5 / 24)) + 0.5 * math.log2(2)
    row = tables["label_divergence"].query("layer == 0").iloc[0]
    assert (row.label_a, row.label_b) == ("x", "y")
    assert row.js_bits == pytest.approx((kl_x + kl_y) / 2, abs=1e-12)


def test_over_represented_by_hand(tables):
    # overall layer-0 shares: e0 4/10, e1 2/10, e2 2/10, e3 2/10
    experts = tables["label_experts"].query("layer == 0")
    x = experts[experts.label == "x"]
    assert x.expert.tolist() == [1, 0, 2] and x["rank"].tolist() == [1, 2, 3]
    assert x.lift.tolist() == pytest.approx([(1 / 3) / 0.2, 0.5 / 0.4, (1 / 6) / 0.2])
    y = experts[experts.label == "y"]
    assert y.expert.tolist() == [3, 2, 0]
    assert y.lift.tolist() == pytest.approx([0.5 / 0.2, 0.25 / 0.2, 0.25 / 0.4])
    assert y.fraction.tolist() == pytest.approx([0.5, 0.25, 0.25])


def test_vocab_specialisation_by_hand(tables):
    # layer 0 top-1 experts: token 5 -> 0, 1, 0 (s0) and 0 (s1); token 6 -> 0; token 7 -> 3
    vocab = tables["vocab_specialisation"].query("layer == 0").set_index("token_id")
    assert vocab.loc[5, "count"] == 3 and vocab.loc[5, "top_expert"] == 0
    assert vocab.loc[5, "top_share"] == pytest.approx(2 / 3) and vocab.loc[5, "experts"] == 2
    assert (vocab.loc[6, "top_expert"], vocab.loc[6, "top_share"]) == (0, 1.0)
    assert (vocab.loc[7, "top_expert"], vocab.loc[7, "top_share"]) == (3, 1.0)


def test_nano_domain_prompts_are_heldout_and_labelled():
    prompts = nano_domain_prompts(seed=0, n_per_label=2)
    assert [p.label for p in prompts] == [d for d in ("passkey", "assoc_recall", "copy", "arithmetic", "code", "prose")
                                          for _ in range(2)]
    assert len({p.text for p in prompts}) == 12
    assert nano_domain_prompts(seed=1, n_per_label=1)[0].text != prompts[0].text


def test_probe_end_to_end_on_a_tiny_model(tiny_next, tokenizer, tmp_path):
    """Three runs (trained routing, random-init routing, the probe's tables); the trained model's label JS equals
    scipy's Jensen-Shannon distance squared (base 2) of the label loads counted from the routing table."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    from workbench.adapters import adapter_for_config
    from workbench.loading import LoadedModel
    from workbench.probes.routing_specialization import run_specialization
    from workbench.inputs.prompts import Prompt
    from workbench.trace import open_trace

    loaded = LoadedModel(tiny_next, tokenizer, adapter_for_config(tiny_next.config), "tiny", "tiny", None)
    prompts = [Prompt("a0", "the cat sat on the mat", "a"), Prompt("a1", "a cat and a hat", "a"),
               Prompt("b0", "x = 42; y = x * 7", "b"), Prompt("b1", "def f(x): return x", "b")]
    result = run_specialization(loaded, prompts, tmp_path / "spec", seed=0, top=2, min_count=1, progress=False)
    trace = open_trace(tmp_path / "spec")
    assert trace.run_ids() == sorted([*result.runs.values(), result.probe_run])
    probe = next(m for m in trace.manifests() if m["run_id"] == result.probe_run)["probe"]
    assert probe["runs"] == result.runs and probe["labels"] == ["a", "b"]
    routing = trace.read("routing", run_id=result.runs["trained"]).to_pandas()
    routing["label"] = routing.seq_id.str[0]
    E = tiny_next.config.num_experts
    for layer, group in routing.groupby("layer"):
        loads = {label: np.bincount(np.concatenate(g.topk_ids.to_list()), minlength=E) for label, g in group.groupby("label")}
        expected = jensenshannon(loads["a"], loads["b"], base=2) ** 2
        got = result.label_divergence.query("model == 'trained' and layer == @layer").js_bits.item()
        assert got == pytest.approx(expected, abs=1e-9)
    js = result.mean_js()
    assert set(js) == {"trained", "random_init"} and js["trained"] != js["random_init"]
    stored = trace.read("label_experts", run_id=result.probe_run).to_pandas()
    assert set(stored.model) == {"trained", "random_init"} and stored["rank"].max() == 2
