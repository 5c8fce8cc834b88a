"""Span mass per head against hand-computed means, with the same seq_id in two runs kept apart."""

import pyarrow as pa

from workbench.analysis.attention import head_span_mass


def test_head_span_mass_by_hand_and_per_run():
    span_mass = pa.map_(pa.string(), pa.float32())
    attention = pa.table({
        "run_id": ["r1", "r1", "r1", "r2"],
        "seq_id": ["text-0"] * 4,
        "position": pa.array([1, 5, 6, 6], pa.int32()),
        "layer": pa.array([3, 3, 3, 3], pa.int16()),
        "head": pa.array([0, 0, 0, 0], pa.int16()),
        "span_mass": pa.array([[("needle", 0.9)], [("needle", 0.5)], [("needle", 0.25)], [("needle", 1.0)]], span_mass),
    })
    spans = pa.table({"run_id": ["r1", "r2"], "seq_id": ["text-0", "text-0"], "span": ["needle", "needle"],
                      "end_token": pa.array([4, 6], pa.int32())})
    mass = head_span_mass(attention, spans, "needle")
    # r1: rows at 5 and 6 come after the span end 4 (row 1 does not); r2: row 6 is at its end 6 -> counted
    assert mass.rows.tolist() == [3]
    assert abs(mass.mass.iloc[0] - (0.5 + 0.25 + 1.0) / 3) < 1e-7
