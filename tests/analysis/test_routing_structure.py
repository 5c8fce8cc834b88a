"""Vocabulary specialisation, co-activation, transitions and run agreement against hand-computed tables
(tests/hand_trace.py)."""

import numpy as np
import pytest

from workbench.analysis import routing_structure as structure
from workbench.analysis.db import Scope


@pytest.fixture(scope="module")
def runs(hand_trace):
    return hand_trace[1]


def test_vocab_specialisation(db, runs):
    # layer 0 top-1 experts: token 5 -> 0, 1, 0; token 6 -> 0; token 7 -> 3
    table = structure.vocab_specialisation(db, Scope(runs["a"]), layer=0)
    assert table.token_id.tolist() == [5, 6, 7]
    assert table["count"].tolist() == [3, 1, 1] and table.top_expert.tolist() == [0, 0, 3]
    assert table.top_share.tolist() == pytest.approx([2 / 3, 1, 1]) and table.experts.tolist() == [2, 1, 1]
    assert structure.vocab_specialisation(db, Scope(runs["a"]), layer=0, min_count=2).token_id.tolist() == [5]


def test_token_experts(db, runs):
    # token 5 at layer 0: slots [0,1] [1,0] [0,3] with weights 0.75, 0.25
    table = structure.token_experts(db, Scope(runs["a"]), layer=0, token_id=5)
    assert table.expert.tolist() == [0, 1, 3] and table["count"].tolist() == [3, 2, 1]
    assert table.share.tolist() == pytest.approx([0.5, 1 / 3, 1 / 6])
    assert table.mean_weight.tolist() == pytest.approx([(0.75 + 0.25 + 0.75) / 3, 0.5, 0.25])


def test_coactivation(db, runs):
    counts, joint = structure.coactivation(db, Scope(runs["a"]), layer=0, num_experts=4)
    assert counts.tolist() == [4, 2, 2, 2]
    expected = np.array([[0, 2, 1, 1], [2, 0, 0, 0], [1, 0, 0, 1], [1, 0, 1, 0]])
    assert (joint == expected).all()
    pairs = structure.coactivation_pairs(counts, joint, top=3)
    assert list(zip(pairs.expert_i, pairs.expert_j)) == [(1, 0), (0, 1), (2, 0)]
    assert pairs.p_j_given_i.tolist() == pytest.approx([1.0, 0.5, 0.5])
    order = structure.clustered_order(counts, joint)
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    assert structure.clustered_order(counts, joint, max_experts=1).tolist() == [0]  # the busiest only


def test_layer_transitions(db, runs):
    table = structure.layer_transitions(db, Scope(runs["a"]), 0, 2)
    assert list(zip(table.expert_from, table.expert_to, table["count"])) == [(0, 2, 2), (0, 1, 1), (1, 2, 1), (3, 0, 1)]
    assert table.p_to_given_from.tolist() == pytest.approx([2 / 3, 1 / 3, 1, 1])


def test_run_agreement(db, runs):
    # s0 only; layer 0 A [0,1] [0,2] [1,0] vs B [0,1] [2,0] [1,3]; layer 2 A [2,3] [2,3] [2,1] vs B [2,3] [3,2] [0,1]
    table = structure.run_agreement(db, Scope(runs["a"]), runs["b"]).set_index("layer")
    assert table.tokens.tolist() == [3, 3]
    assert table.top1_agreement.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert table.jaccard.tolist() == pytest.approx([(1 + 1 + 1 / 3) / 3] * 2)
