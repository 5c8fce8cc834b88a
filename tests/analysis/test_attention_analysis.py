"""Attention aggregates against the hand-written trace (tests/hand_trace.py): layer 3, heads 0 and 1, needle mass
0.9 at position 0 (before the needle ends), 0.2/0.4 at position 1, 0.6/0.8 at position 2 (s0; s1 has positions
0 and 1 only); needle span [0, 1), query span [1, 2)."""

import pytest

from workbench.analysis import attention


def test_span_names_in_order_of_their_start(db, scope):
    assert attention.span_names(db, scope) == ["needle", "question"]


def test_sink_entropy_and_gates(db, scope):
    table = attention.head_sink_entropy(db, scope)
    assert table.sink_mass.tolist() == pytest.approx([0.25, 0.75]) and table.rows.tolist() == [5, 5]
    assert table.mean_distance.tolist() == pytest.approx([(0 + 1 + 2 + 0 + 1) / 5] * 2)
    gates = attention.head_gate_summary(db, scope)
    assert gates["head"].tolist() == [0, 1] and gates.gate_mean.tolist() == pytest.approx([0.25, 0.75])
    assert gates.gate_low_fraction.tolist() == pytest.approx([0.5, 0.0])


def test_default_query_is_the_query_span_not_the_last_token(db, scope):
    assert attention.query_positions(db, scope, "s0") == [0, 1, 2]
    assert attention.default_query(db, scope, "s0") == 1  # the query span [1, 2), not the last token 2
    assert attention.default_query(db, scope, "missing") is None


def test_query_topk_drops_padding(db, scope):
    table = attention.query_topk(db, scope, "s0", 2, 3)
    assert table["head"].tolist() == [0, 0, 1, 1] and table.key_position.tolist() == [0, 2, 0, 2]
    assert table["rank"].tolist() == [0, 1, 0, 1]
    assert table.weight.tolist() == pytest.approx([0.6, 0.4, 0.8, 0.2])
    assert attention.query_topk(db, scope, "s0", 0, 3).key_position.tolist() == [0, 0]  # -1 padding dropped


def test_retrieval_summary(db, scope):
    table = attention.retrieval_summary(db, scope)
    assert table["head"].tolist() == [0, 1]
    assert table.score.tolist() == pytest.approx([0.75, 0.25])
    assert table.hits.tolist() == [6, 2] and table.steps.tolist() == [8, 8] and table.sequences.tolist() == [2, 2]
