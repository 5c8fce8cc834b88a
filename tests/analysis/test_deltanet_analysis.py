"""DeltaNet aggregates against the hand-written trace (tests/hand_trace.py, DeltaNet layer 1)."""

import math

import numpy as np
import pytest

from workbench.analysis import deltanet


def test_state_norm_curves(db, scope):
    table = deltanet.state_norm_curves(db, scope, "s0")
    assert table.position.tolist() == [0, 1, 2] and table.state_norm_mean.tolist() == pytest.approx([1, 2, 3])
    assert table.state_norm_max.tolist() == pytest.approx([2, 3, 4])


def test_gate_quantiles(db, scope):
    # decay_mean over s0 (0.5, 0.75, 1.0) and s1 (0.5, 0.75)
    row = deltanet.gate_quantiles(db, scope, "decay_mean").iloc[0]
    assert row.layer == 1 and row.rows == 5 and row["mean"] == pytest.approx(0.7)
    assert (row.p25, row.p50, row.p75) == pytest.approx((0.5, 0.75, 0.75))
    with pytest.raises(ValueError, match="unknown DeltaNet gate column"):
        deltanet.gate_quantiles(db, scope, "beta")


def test_head_summary_weights_sequences_by_tokens(db, scope):
    table = deltanet.head_summary(db, scope)
    # head 0: s0 (3 tokens) log decay -0.5, s1 (2 tokens) -1.0 -> -0.7; state norm (3*1 + 2*2) / 5 = 1.4
    assert table.tokens.tolist() == [5, 5]
    assert table.log_decay_mean.tolist() == pytest.approx([-0.7, -0.1])
    assert table.half_life.tolist() == pytest.approx([math.log(2) / 0.7, math.log(2) / 0.1])
    assert table.state_norm_mean.tolist() == pytest.approx([1.4, 3.4])
    assert deltanet.half_life(np.array([0.0, -math.log(2)])).tolist() == [math.inf, 1.0]


def test_head_curves_recall_and_snapshots(db, scope):
    heads = deltanet.head_norm_curves(db, scope, "s1", 1)
    assert heads["head"].tolist() == [0, 0, 1, 1] and heads.state_norm.tolist() == pytest.approx([1, 1, 3, 3])
    recall = deltanet.recall_curves(db, scope, "s0")
    assert recall.distance.tolist() == [0, 1, 2] and recall.rel_err_mean.tolist() == pytest.approx([0, 0.5, 1])
    snapshots = deltanet.snapshot_heads(db, scope, "s1")
    assert snapshots.position.tolist() == [1, 1] and snapshots.eff_rank.tolist() == pytest.approx([1.5, 2.5])


def test_state_norm_difference_between_runs_is_zero_on_itself(db, scope):
    table = deltanet.state_norm_difference(db, scope, scope.run_id)
    assert table.tokens.tolist() == [5] and table.mean_abs_diff.tolist() == [0.0]
    assert table.mean_a.tolist() == pytest.approx([(1 + 2 + 3 + 1 + 2) / 5])


def test_state_norm_difference_between_two_runs(db, scope, hand_trace):
    table = deltanet.state_norm_difference(db, scope, hand_trace[1]["b"])  # s0: A 1 2 3, B 1.5 2 2
    assert table.layer.tolist() == [1] and table.tokens.tolist() == [3]
    assert table.mean_a.tolist() == pytest.approx([2.0]) and table.mean_b.tolist() == pytest.approx([5.5 / 3])
    assert table.mean_abs_diff.tolist() == pytest.approx([0.5]) and table.max_abs_diff.tolist() == pytest.approx([1.0])
