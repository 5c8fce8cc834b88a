"""Prune what-if sweep: experts chosen per criterion as worked out by hand, teacher-forced exact match giving greedy
decoding's verdict on the shipped nano, the best-criterion summary and the curves frame."""

import numpy as np
import pytest
import torch

from workbench.probes.expert_pruning import LayerSaliency, best_criterion, experts_to_mask, forced_exact_match

pytestmark = pytest.mark.filterwarnings("ignore")


def test_experts_to_mask_by_hand():
    saliency = LayerSaliency(layers=[0, 3], count=np.array([[5, 0, 9, 2], [1, 1, 7, 3]]),
                             reap=np.array([[0.5, 0.0, 0.1, 0.9], [0.2, 0.3, 0.05, 0.4]]))
    assert experts_to_mask(saliency, "frequency", 0.5) == {0: [1, 3], 3: [0, 1]}  # ties by id: 0 before 1
    assert experts_to_mask(saliency, "reap", 0.5) == {0: [1, 2], 3: [0, 2]}
    assert experts_to_mask(saliency, "reap", 0.25) == {0: [1], 3: [2]}
    random_a, random_b = experts_to_mask(saliency, "random", 0.5, seed=3), experts_to_mask(saliency, "random", 0.5, 3)
    assert random_a == random_b and all(len(v) == 2 for v in random_a.values())
    with pytest.raises(ValueError, match="unknown pruning criterion"):
        experts_to_mask(saliency, "size", 0.5)


def test_best_criterion():
    rows = [{"criterion": c, "fraction": 0.5, "metric": m, "value": v, "suite": s}
            for c, m, v, s in [("reap", "exact_match", 0.5, "a"), ("reap", "exact_match", 1.0, "b"),
                               ("reap", "loss", 2.0, "heldout_loss"), ("frequency", "exact_match", 0.75, "a"),
                               ("frequency", "exact_match", 0.75, "b"), ("frequency", "loss", 1.0, "heldout_loss")]]
    assert best_criterion(rows) == {0.5: "frequency"}  # equal accuracy 0.75: the lower loss wins


def test_forced_exact_match_equals_greedy_on_nano():
    from nano.evaluate import exact_match

    from workbench.loading import load_model
    from workbench.nano.data import heldout_records

    loaded = load_model("nano", dtype="float32")
    records = heldout_records("arithmetic_mul", 0, 2) + heldout_records("arithmetic_add", 0, 2)
    wrong = dict(records[0], id="wrong", answer=str(int(records[0]["answer"]) + 1))
    wrong["text"] = wrong["prompt"] + wrong["answer"] + records[0]["text"][len(records[0]["prompt"]) +
                                                                           len(records[0]["answer"]):]
    records.append(wrong)
    greedy = [r["exact"] for r in exact_match(loaded.model, loaded.tokenizer, records, torch.device("cpu"), 4096)]
    forced = forced_exact_match(loaded.model, loaded.tokenizer, records)
    assert forced == greedy
    assert forced[-1] is False and any(forced)
