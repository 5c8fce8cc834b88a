"""Long context queries and figures on the hand trace (numbers worked out in tests/hand_trace.py)."""

import numpy as np
import pytest

from workbench.analysis.db import Scope, TraceDB
from workbench.analysis.long_context import ablation_results, capacity_grid, needle_by_layer
from workbench.app.figures.long_context import (ablation_figure, capacity_accuracy_figure, capacity_heatmaps,
                                                needle_by_layer_figure)

RUN_A = "20260101T000000Z-aaaaaaaa"


@pytest.fixture
def db_scope(hand_trace):
    return TraceDB(hand_trace[0]), Scope(run_id=RUN_A)


def test_needle_mass_beside_deltanet_contribution(db_scope):
    db, scope = db_scope
    frame = needle_by_layer(db, scope)
    values = {(row.layer, row.measure): row.value for row in frame.itertuples()}
    # attention layer 3, rows after the needle (position >= 1): head 0 0.2 0.6 | 0.2, head 1 0.4 0.8 | 0.4 -> the
    # max head is head 1 at 1.6 / 3 (rows at position 0, before the needle's end, never count)
    assert values[(3, "needle mass, max head")] == pytest.approx(1.6 / 3)
    attention_row = frame[frame.layer == 3].iloc[0]
    assert attention_row["head"] == 1 and attention_row["rows"] == 3
    assert values[(1, "DeltaNet norm ratio (mean over rows and heads)")] == pytest.approx(0.375)
    assert values[(1, "DeltaNet projection (mean over rows and heads)")] == pytest.approx(0.3)
    figure = needle_by_layer_figure(frame)
    assert {bar.name for bar in figure.data} == {"needle mass, max head", "DeltaNet norm ratio (mean over rows and "
                                                 "heads)", "DeltaNet projection (mean over rows and heads)"}
    assert "max head" in figure.layout.yaxis.title.text and "mean over query rows after" in \
        figure.layout.yaxis.title.text
    assert needle_by_layer(db, scope, "nothing").empty


def test_capacity_grid_and_figures(db_scope):
    db, scope = db_scope
    grid = capacity_grid(db, scope, "retention_ratio")
    assert grid.keys_after.tolist() == [0, 1] and grid.value.tolist() == [1.0, 0.5]
    (figure,) = capacity_heatmaps(grid, "retention")
    assert np.asarray(figure.data[0].z).tolist() == [[1.0, 0.5]]
    assert capacity_accuracy_figure(grid).data[0].y.tolist() == [0.5]
    with pytest.raises(ValueError, match="unknown state_capacity value"):
        capacity_grid(db, scope, "bogus")


def test_ablation_is_labelled_an_intervention(db_scope):
    db, scope = db_scope
    results = ablation_results(db, scope)
    assert results.condition.tolist() == ["none", "all full_attention"]
    assert results.exact_match.tolist() == [1.0, 0.25] and (results.intervention == "ablation").all()
    figure = ablation_figure(results, "passkey")
    assert figure.layout.title.text.startswith("INTERVENTION")
    assert sorted(bar.name for bar in figure.data) == ["no ablation", "zero output"]
