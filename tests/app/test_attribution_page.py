"""The Attribution page and its analyses on a trace the test writes (nano, passkey prompts with --attribution, and
one patching pair): every number checked against a direct pandas computation on the rows."""

import numpy as np
import pytest

from workbench.analysis.attribution import (GROUPS, attributed_positions, contributions_by_group,
                                            contributions_by_layer, patching_grid, top_components)
from workbench.analysis.db import Scope, TraceDB
from workbench.loading import load_model
from workbench.probes.attribution import run_attribution
from workbench.probes.patching import run_patching
from workbench.trace import open_trace


@pytest.fixture(scope="module")
def attribution_trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("attr") / "trace"
    loaded = load_model("nano", dtype="float32")
    run_id, found = run_attribution(loaded, out, prompts=2, length=96, progress=False)
    patch_id, _, _ = run_patching(loaded, out, pairs=1, length=96, heads=True, progress=False)
    return out, run_id, patch_id, found


def test_contributions_sum_to_the_model_logit(attribution_trace):
    out, run_id, _, found = attribution_trace
    db = TraceDB(out)
    rows = open_trace(out).read("logit_attribution", run_id=run_id).to_pandas()
    positions = attributed_positions(db, Scope(run_id))
    assert len(positions) == 2 * 5  # two prompts, a 5-digit answer each
    np.testing.assert_allclose(positions.total, positions.model_logit, atol=1e-3)
    by_layer = contributions_by_layer(db, Scope(run_id))
    assert by_layer.value.sum() == pytest.approx(rows.model_logit.groupby([rows.seq_id, rows.position]).first().mean(),
                                                 abs=1e-3)
    rows["group"] = rows.component.map(GROUPS)
    want = rows.groupby("group").value.sum() / len(positions)
    groups = contributions_by_group(db, Scope(run_id)).set_index("group")
    np.testing.assert_allclose(groups.value[want.index], want, rtol=1e-5, atol=1e-6)
    assert found["groups"].equals(contributions_by_group(db, Scope(run_id)))
    heads = top_components(db, Scope(run_id), "head", 3)
    mean = rows[rows.component.str.endswith("_head")].groupby(["layer", "head"]).value.mean()
    best = mean.abs().sort_values(ascending=False).index[:3]
    assert list(zip(heads.layer, heads["index"])) == list(best)


def test_patching_grid_matches_the_rows(attribution_trace):
    out, _, patch_id, _ = attribution_trace
    grid = patching_grid(TraceDB(out), Scope(patch_id), "mixer").set_index(["layer", "range"]).recovery
    rows = open_trace(out).read("patching", run_id=patch_id).to_pandas()
    want = rows[rows.site == "mixer"].groupby(["layer", "range"]).recovery.mean()
    np.testing.assert_allclose(grid[want.index], want, rtol=1e-6)
    heads = patching_grid(TraceDB(out), Scope(patch_id), "head")
    assert set(heads.columns) == {"layer", "head", "recovery", "pairs"}


def test_attribution_page_renders(attribution_trace):
    from test_pages import chart_titles, run_page

    out, run_id, _, _ = attribution_trace
    at = run_page(out, "attribution", run_id)
    assert not at.exception, [e.value for e in at.exception]
    titles = chart_titles(at)
    assert any("by layer, mean over 10 attributed positions" in t for t in titles)
    assert any(t.startswith("INTERVENTION — activation patching, mixer sites") for t in titles)


def test_patching_heatmap_orders_ranges_and_fixes_the_scale():
    import pandas as pd

    from workbench.app.figures.attribution import patching_heatmap

    frame = pd.DataFrame({"layer": [0, 0, 0, 1], "range": ["last", "needle", "question", "last"],
                          "recovery": [0.0001, 0.0, 0.0, 1.0], "pairs": [1] * 4})
    heat = patching_heatmap(frame, "mixer", lambda layer: f"L{layer}").data[0]
    assert tuple(heat.x) == ("needle", "question", "last")  # prompt order, not alphabetical
    assert (heat.zmin, heat.zmax) == (-1.0, 1.0)  # 1e-4 of noise is drawn as nothing
