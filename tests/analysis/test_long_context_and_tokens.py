"""needle_sweep grids, the token explorer's per-token metrics and `workbench info` sizes on the hand trace."""

import numpy as np
import pytest

from workbench.analysis import long_context, tokens
from workbench.analysis.db import Scope
from workbench.analysis.summary import run_sizes, trace_summary


def test_sweep_grid_takes_the_max_head_of_needle_mass_and_skips_layers_it_does_not_apply_to(db, scope):
    grid = long_context.sweep_grid(db, scope, "needle_mass")
    assert grid.layer.unique().tolist() == [3]  # DeltaNet rows hold no needle mass
    cell = grid[(grid.context_length == 64) & (grid.needle_depth == 0.5)].iloc[0]
    assert cell.value == pytest.approx(max(0.5, 1.0)) and cell["head"] == 1 and cell.rows == 2  # 0.5 h + depth
    retention = long_context.sweep_grid(db, scope, "state_retention")
    assert retention.layer.unique().tolist() == [1]
    assert retention.sort_values(["context_length", "needle_depth"]).value.tolist() == pytest.approx([1, 0.5, 1, 0.5])
    accuracy = long_context.sweep_grid(db, scope, "exact_match")
    assert accuracy[accuracy.layer == 3].sort_values("context_length").value.tolist() == pytest.approx([1, 1, .5, .5])
    model = long_context.model_grid(accuracy)
    assert model.sort_values(["context_length", "needle_depth"]).value.tolist() == pytest.approx([1, 1, .5, .5])
    with pytest.raises(ValueError, match="unknown needle_sweep value"):
        long_context.sweep_grid(db, scope, "accuracy")


def test_token_metrics(db, scope):
    top1 = tokens.token_metric(db, scope, "s0", 0, "top-1 expert")
    assert top1.token.tolist() == ["w5", "w6", "w5"] and top1.value.tolist() == [0, 0, 1]
    entropy = tokens.token_metric(db, scope, "s1", 0, "router entropy")
    assert entropy.value.tolist() == pytest.approx([4.0, 5.0])
    needle = tokens.token_metric(db, scope, "s0", 3, "needle mass")  # the max head; none before the needle's end
    assert np.isnan(needle.value.iloc[0]) and needle.value.tolist()[1:] == pytest.approx([0.4, 0.8])
    windowed = tokens.token_metric(db, Scope(scope.run_id, positions=(1, 3)), "s0", 1, "state norm")
    assert windowed.position.tolist() == [1, 2] and windowed.value.tolist() == pytest.approx([2, 3])
    assert tokens.metric_layers(db, scope, "state norm") == [1]
    with pytest.raises(ValueError, match="unknown token metric"):
        tokens.token_metric(db, scope, "s0", 0, "colour")


def test_info_reports_sizes_per_run(db, hand_trace):
    sizes = run_sizes(db.trace)
    runs = hand_trace[1]
    b = sizes[sizes.run_id == runs["b"]].set_index("table")
    assert sorted(b.index) == ["deltanet", "routing", "tokens"]  # run B holds three tables only
    assert b.loc["tokens", "rows"] == 3 and b.loc["routing", "rows"] == 6 and (b.tokens == 3).all()
    assert b.loc["routing", "bytes_per_token"] == pytest.approx(db.trace.size_bytes("routing", runs["b"]) / 3)
    a = sizes[sizes.run_id == runs["a"]].set_index("table")
    assert a.loc["routing", "bytes_per_token"] == pytest.approx(db.trace.size_bytes("routing", runs["a"]) / 5)
    text = trace_summary(db.trace)
    assert f"run {runs['b']}  trace" in text and "B/token" in text


def test_summary_names_the_layer_kinds_a_model_has():
    from workbench.analysis.summary import _kind_counts

    assert _kind_counts(["linear_attention"] * 3 + ["full_attention"]) == "3 DeltaNet, 1 attention"
    assert _kind_counts(["full_attention"] * 24) == "24 attention"  # a plain MoE model: no "0 DeltaNet"
    assert _kind_counts([]) == "no layer kinds recorded"
