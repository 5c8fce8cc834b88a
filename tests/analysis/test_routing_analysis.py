"""Routing aggregates against tables worked out by hand from tests/hand_trace.py (layer 0: the five rows
[0,1] [0,2] [1,0] | [0,3] [3,2]; layer 2: [2,3] [2,3] [2,1] | [1,2] [0,3])."""

import math

import numpy as np
import pytest

from workbench.analysis import balance, routing
from workbench.analysis.db import Scope


@pytest.fixture(scope="module")
def run_a(hand_trace):
    return hand_trace[1]["a"]


def _counts(frame, **where):
    for key, value in where.items():
        frame = frame[frame[key] == value]
    return frame.sort_values("expert")["count"].tolist()


def test_expert_load_counts_every_slot_and_zero_fills(db, run_a):
    load = routing.expert_load(db, Scope(run_a), num_experts=5)
    assert _counts(load, layer=0) == [4, 2, 2, 2, 0]
    assert _counts(load, layer=2) == [1, 2, 4, 3, 0]
    assert load[load.layer == 0].fraction.tolist() == pytest.approx([0.4, 0.2, 0.2, 0.2, 0.0])
    only_s1 = routing.expert_load(db, Scope(run_a, layers=(0,), seq_id="s1"), num_experts=4)
    assert _counts(only_s1) == [1, 0, 1, 2] and only_s1.layer.unique().tolist() == [0]


def test_scope_filters_label_and_position_window(db, run_a):
    assert _counts(routing.expert_load(db, Scope(run_a, layers=(0,), label="x"), 4)) == [3, 2, 1, 0]
    assert _counts(routing.expert_load(db, Scope(run_a, layers=(0,), positions=(1, 3)), 4)) == [2, 1, 2, 1]


def test_load_balance_by_hand(db, run_a):
    table = balance.load_balance(routing.expert_load(db, Scope(run_a), num_experts=4)).set_index("layer")
    row = table.loc[0]  # counts 4 2 2 2: mean 2.5, population std sqrt(0.75)
    assert row.cv == pytest.approx(math.sqrt(0.75) / 2.5)
    assert row.max_over_mean == pytest.approx(1.6)
    entropy = -(0.4 * math.log(0.4) + 3 * 0.2 * math.log(0.2))
    assert row.entropy_norm == pytest.approx(entropy / math.log(4))
    assert row.unused == 0 and row.top1pct_share == pytest.approx(0.4)  # ceil(1% of 4) = 1 expert
    assert table.loc[2].top1pct_share == pytest.approx(0.4) and table.loc[2].max_over_mean == pytest.approx(1.6)


def test_unused_experts_are_counted(db, run_a):
    table = balance.load_balance(routing.expert_load(db, Scope(run_a, seq_id="s1"), num_experts=4)).set_index("layer")
    assert table.loc[0].unused == 1 and table.loc[2].unused == 0  # s1 never picks expert 1 at layer 0


def test_load_by_label_and_js_divergence(db, run_a):
    by_label = routing.load_by_label(db, Scope(run_a, layers=(0,)), num_experts=4)
    assert _counts(by_label, label="x") == [3, 2, 1, 0] and _counts(by_label, label="y") == [1, 0, 1, 2]
    js = balance.label_divergence(by_label)
    # p = [1/2, 1/3, 1/6, 0], q = [1/4, 0, 1/4, 1/2], m = (p + q) / 2; worked out on paper: 0.453358 bits
    assert js.label_a.tolist() == ["x"] and js.label_b.tolist() == ["y"]
    assert js.js_bits.iloc[0] == pytest.approx(0.453358, abs=1e-5)
    assert balance.js_divergence(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)


def test_load_drift_by_position_bucket(db, run_a):
    drift = routing.load_drift(db, Scope(run_a, layers=(0,)), bucket=2, num_experts=4)
    assert _counts(drift, bucket=0) == [3, 1, 2, 2] and _counts(drift, bucket=2) == [1, 1, 0, 0]
    divergence = balance.drift_divergence(drift).set_index("bucket")
    assert divergence.slots.tolist() == [8, 2]
    assert divergence.js_bits.loc[2] == pytest.approx(balance.js_divergence([1, 1, 0, 0], [4, 2, 2, 2]))
    # bucket 2 holds 2 of the fullest bucket's 8 slots: kept at min_share 0.25, dropped above
    assert balance.drift_divergence(drift, min_share=0.25).bucket.tolist() == [0, 2]
    assert balance.drift_divergence(drift, min_share=0.3).bucket.tolist() == [0]
    with pytest.raises(ValueError, match="at least 1 token"):
        routing.load_drift(db, Scope(run_a), bucket=0)


def test_metric_quantiles_and_histogram(db, run_a):
    quantiles = routing.metric_quantiles(db, Scope(run_a), "router_entropy").set_index("layer")
    row = quantiles.loc[0]  # entropies 1 2 3 4 5
    assert (row.rows, row["mean"], row.p05, row.p25, row.p50, row.p75, row.p95) == pytest.approx(
        (5, 3.0, 1.2, 2.0, 3.0, 4.0, 4.8))
    histogram = routing.metric_histogram(db, Scope(run_a, layers=(0,)), "router_entropy", bins=4)
    assert histogram["count"].tolist() == [1, 1, 1, 2]  # bins of width 1 from 1; 5 falls in the last
    assert histogram.lo.tolist() == pytest.approx([1, 2, 3, 4])
    with pytest.raises(ValueError, match="unknown router metric 'nope'"):
        routing.metric_quantiles(db, Scope(run_a), "nope")
