"""MTP analysis on the hand-written MTP trace (tests/hand_trace.py): every number worked out on paper."""

import math

import pytest

from hand_trace import write_mtp_trace
from workbench.analysis.db import Scope, TraceDB
from workbench.analysis.mtp import acceptance_by_label, acceptance_by_length, acceptance_by_position, mtp_routing_overlap


@pytest.fixture(scope="module")
def db_scope(tmp_path_factory):
    root = tmp_path_factory.mktemp("mtp") / "trace"
    run_id = write_mtp_trace(root)
    return TraceDB(root), Scope(run_id)


def test_acceptance_by_label(db_scope):
    frame = acceptance_by_label(*db_scope).set_index("label")
    # x = s0: rows 2, accepted T F, draft_correct T (the other null), p 0.8 0.2; y = s1: one row, accepted, p 0.6
    assert frame.loc["x"].tolist() == pytest.approx([2, 0.5, 0.0, 1.0, 0.5])  # rows, accepted, ties, correct, p
    assert frame.loc["y", "rows"] == 1 and frame.loc["y", "accepted"] == 1.0 and frame.loc["y", "p_accepted"] == pytest.approx(0.6)
    assert math.isnan(frame.loc["y", "draft_correct"])  # its one row has no actual token t+2


def test_acceptance_by_position_and_length(db_scope):
    by_position = acceptance_by_position(*db_scope)
    assert by_position.bucket.tolist() == ["0-64"]
    assert by_position.iloc[0][["rows", "accepted", "draft_correct", "p_accepted"]].tolist() == \
        pytest.approx([3, 2 / 3, 1.0, 1.6 / 3])
    by_length = acceptance_by_length(*db_scope)
    assert by_length.length.tolist() == ["0-64"] and by_length.sequences.tolist() == [2]
    assert by_length.accepted.tolist() == pytest.approx([2 / 3])
    only_first = acceptance_by_position(db_scope[0], Scope(db_scope[1].run_id, positions=(1, 2)))
    assert only_first.rows.tolist() == [1] and only_first.accepted.tolist() == [0.0]


def test_mtp_routing_overlap(db_scope):
    frame = mtp_routing_overlap(*db_scope, mtp_layer=4).set_index("layer")
    # MTP row t vs trunk position t+1: s0 t0 [0,1]~L0 [0,2] = 1/3, ~L2 [2,3] = 0; s0 t1 [2,3]~L0 [1,0] = 0,
    # ~L2 [2,1] = 1/3; s1 t0 [1,2]~L0 [3,2] = 1/3, ~L2 [0,3] = 0
    assert frame.jaccard.to_dict() == pytest.approx({0: 2 / 9, 2: 1 / 9})
    assert frame.rows.to_dict() == {0: 3, 2: 3}
