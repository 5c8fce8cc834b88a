"""Expert load and per-token tables against hand-computed counts."""

import pyarrow as pa

from workbench.analysis.routing import expert_load, load_matrix, sequence_routing, topk_long


def _routing():
    return pa.table({
        "seq_id": ["s"] * 4,
        "position": pa.array([0, 1, 0, 1], pa.int32()),
        "layer": pa.array([0, 0, 3, 3], pa.int16()),
        "topk_ids": pa.array([[1, 2], [2, 0], [3, 3], [1, 3]], pa.list_(pa.uint16())),
        "topk_weights": pa.array([[0.75, 0.25], [0.5, 0.5], [0.5, 0.5], [0.875, 0.125]], pa.list_(pa.float16())),
        "router_entropy": pa.array([0.1, 0.2, 0.3, 0.4], pa.float16()),
    })


def test_expert_load_counts_by_hand():
    load = expert_load(_routing(), num_experts=4)
    matrix = load_matrix(load, "count")
    assert matrix.loc[0].tolist() == [1, 1, 2, 0]
    assert matrix.loc[3].tolist() == [0, 1, 0, 3]
    assert load_matrix(load).loc[3].tolist() == [0, 0.25, 0, 0.75]


def test_sequence_routing_and_long_form():
    tokens = pa.table({"seq_id": ["s", "s"], "position": pa.array([0, 1], pa.int32()), "token": ["a", "b"]})
    frame = sequence_routing(_routing(), tokens, "s", 3)
    assert frame.token.tolist() == ["a", "b"]
    long = topk_long(frame)
    assert long[["position", "rank", "expert"]].values.tolist() == [[0, 0, 3], [0, 1, 3], [1, 0, 1], [1, 1, 3]]
    assert long.weight.tolist() == [0.5, 0.5, 0.875, 0.125]


def test_sequence_routing_keeps_runs_apart():
    import pytest

    routing = _routing().append_column("run_id", pa.array(["r1"] * 4))
    tokens = pa.table({"seq_id": ["s"] * 4, "position": pa.array([0, 1, 0, 1], pa.int32()), "token": ["a", "b", "x", "y"],
                       "run_id": ["r1", "r1", "r2", "r2"]})
    assert sequence_routing(routing, tokens, "s", 3).token.tolist() == ["a", "b"]
    two_runs = pa.concat_tables([routing, _routing().append_column("run_id", pa.array(["r2"] * 4))])
    with pytest.raises(ValueError, match="in 2 runs"):
        sequence_routing(two_runs, tokens, "s", 3)
