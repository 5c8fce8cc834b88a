"""Figures that cannot mislead on sight (issue 28, item 3), each checked against numbers computed independently
here: expert ids in categorical colours, shares and accuracies on axes from zero, never-chosen experts marked and
counted, lift only with its minimum support, the DeltaNet page's retention measures, the MTP layer labelled 'MTP'
and kept out of trunk aggregates unless picked, and the prompt's spans outlined in the token explorer."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support.app_pages import chart_data, run_page
from workbench.analysis import routing
from workbench.analysis.balance import MIN_LIFT_SUPPORT, over_represented
from workbench.analysis.db import Scope, TraceDB
from workbench.analysis.sparsity import label_top_experts
from workbench.app.figures import routing as routing_figures
from workbench.app.figures import views
from workbench.app.figures.common import layer_label, quantile_boxes
from workbench.app.figures.sparsity import pruning_figure, saliency_heatmap

NANO = Path(__file__).resolve().parents[2] / "datasets" / "nano"
NANO_TRACE = "20261202T010421Z-a8e2a1b1"  # the shipped demo trace: routing of 8 decoder layers + the MTP layer (8)


def test_never_chosen_experts_are_grey_and_counted(db, scope):
    """Hand trace run A with 6 experts: ids 4 and 5 are never chosen at layers 0 and 2 (the routing rows name 0..3
    only), so 4 of 12 cells are grey and blank in the load heatmap."""
    ids = db.frame("SELECT layer, unnest(topk_ids) AS e FROM routing WHERE run_id = ?", [scope.run_id])
    chosen = {(int(r.layer), int(r.e)) for r in ids.itertuples()}
    never = [(layer, e) for layer in (0, 2) for e in range(6) if (layer, e) not in chosen]
    assert never == [(0, 4), (0, 5), (2, 4), (2, 5)]
    figure = routing_figures.expert_load_heatmap(routing.expert_load(db, scope, 6))
    main, grey = figure.data
    marked = [(int(y[1:]), int(x)) for i, y in enumerate(grey.y) for j, x in enumerate(grey.x)
              if not np.isnan(np.asarray(grey.z, dtype=float)[i, j])]
    assert marked == never and grey.showscale is False and "never chosen" in grey.hovertemplate
    z = np.asarray(main.z, dtype=float)
    assert np.isnan(z[:, 4:]).all() and not np.isnan(z[:, :4]).any()
    assert "never chosen (4 of 12 layer x expert cells)" in figure.layout.title.text


def test_saliency_of_a_never_chosen_expert_is_marked_not_a_gap():
    saliency = pd.DataFrame({"layer": [0, 0, 1], "expert": [0, 2, 1], "count": [3, 1, 2], "gate_mean": [.5, .2, .4],
                             "output_norm_mean": [1.0, 2.0, 3.0], "reap": [0.5, 0.4, 1.2]})
    figure = saliency_heatmap(saliency, "reap", num_experts=3)
    z = np.asarray(figure.data[0].z, dtype=float)
    assert z[0].tolist()[0] == 0.5 and np.isnan(z[0, 1]) and z[1, 1] == 1.2 and np.isnan(z[1, [0, 2]]).all()
    assert np.isfinite(np.asarray(figure.data[1].z, dtype=float)).sum() == 3  # (0, 1), (1, 0), (1, 2)
    assert "never chosen (3 of 6" in figure.layout.title.text


def test_accuracy_and_share_axes_start_at_zero():
    curves = pd.DataFrame({"criterion": ["reap", "reap"], "fraction": [0.0, 0.5], "accuracy": [0.95, 0.9],
                           "loss": [1.0, 1.2]})
    assert list(pruning_figure(curves, "accuracy").layout.yaxis.range) == [0, 1.05]
    assert pruning_figure(curves, "accuracy").layout.yaxis.title.text == "mean exact match"
    quantiles = pd.DataFrame({"layer": [0], "p05": [.6], "p25": [.7], "p50": [.8], "p75": [.85], "p95": [.9],
                              "mean": [.78]})
    assert list(quantile_boxes(quantiles, "top-k mass", "top-k mass", share=True).layout.yaxis.range) == [0, 1.05]


def test_lift_needs_its_minimum_support():
    """Layer 0, labels a and b over experts 0..2. Expert 2 is chosen once, by label a (1 of 100 slots): lift 2.0,
    the largest, on a 1% share of a; expert 0 takes 60% of a and 40% of b (lift 1.2). With a support of 2% expert 2
    drops out and expert 0 ranks first."""
    counts = {("a", 0): 60, ("a", 1): 39, ("a", 2): 1, ("b", 0): 40, ("b", 1): 60, ("b", 2): 0}
    by_label = pd.DataFrame([{"layer": 0, "label": k[0], "expert": k[1], "count": n} for k, n in counts.items()])
    by_label["fraction"] = by_label["count"] / by_label.groupby("label")["count"].transform("sum")
    unsupported = over_represented(by_label, top=1, min_fraction=0.0)
    assert unsupported.set_index("label").expert.to_dict() == {"a": 2, "b": 1}
    assert unsupported.set_index("label").lift["a"] == pytest.approx(0.01 / (1 / 200))
    supported = over_represented(by_label, top=1, min_fraction=0.02)
    assert supported.set_index("label").expert.to_dict() == {"a": 0, "b": 1}
    assert supported.set_index("label").lift["a"] == pytest.approx(0.6 / (100 / 200))
    with pytest.raises(ValueError, match="min_fraction"):
        over_represented(by_label, min_fraction=5)


def test_shipped_label_experts_rank_only_supported_experts():
    """The shipped routing-specialisation run: the page's table is recomputed from the trained routing run its
    manifest names; checked against a direct DuckDB count of that run's label loads."""
    db = TraceDB(NANO)
    probe = next(m for m in db.trace.manifests() if (m.get("probe") or {}).get("name") == "routing_specialization")
    table = label_top_experts(db, Scope(probe["run_id"]))
    assert (table.fraction >= MIN_LIFT_SUPPORT).all() and len(table) == 6 * 8 * 5
    stored = db.frame("SELECT min(fraction) AS f FROM label_experts WHERE model = 'trained'").f.iloc[0]
    assert stored < 0.001  # what the page showed before: a 0.006% share ranked by lift
    routing_run = probe["probe"]["runs"]["trained"]
    loads = db.frame("""WITH labels AS (SELECT DISTINCT seq_id, label FROM tokens WHERE run_id = ?)
        SELECT r.layer, l.label, e AS expert, count(*) AS n FROM (SELECT seq_id, layer, unnest(topk_ids) AS e
        FROM routing WHERE run_id = ?) r JOIN labels l USING (seq_id) GROUP BY ALL""", [routing_run, routing_run])
    loads["fraction"] = loads.n / loads.groupby(["layer", "label"]).n.transform("sum")
    overall = loads.groupby(["layer", "expert"]).n.sum() / loads.groupby("layer").n.sum()
    loads["lift"] = loads.fraction / overall.reindex(pd.MultiIndex.from_frame(loads[["layer", "expert"]])).to_numpy()
    top = loads[loads.fraction >= MIN_LIFT_SUPPORT].sort_values(["lift", "fraction", "expert"],
                                                                 ascending=[False, False, True])
    first = top.groupby(["layer", "label"]).head(1).set_index(["layer", "label"]).sort_index()
    ranked = table[table["rank"] == 1].set_index(["layer", "label"]).sort_index()
    assert ranked.expert.tolist() == first.expert.tolist()
    assert ranked.lift.to_numpy() == pytest.approx(first.lift.to_numpy())


def test_deltanet_page_offers_retention_measures(hand_trace):
    """Hand trace s0: retention_ratio_mean 1.0 0.5 0.25 at distances 0 1 2."""
    at = run_page(hand_trace[0], "deltanet", "20260101T000000Z-aaaaaaaa")
    radio = at.radio(key="recall_measure")
    assert radio.options[:2] == ["retention_cos_mean", "retention_ratio_mean"] and radio.value == "retention_cos_mean"
    radio.set_value("retention_ratio_mean").run()
    (line,) = chart_data(at, "State recall of planted pairs")
    assert line["x"] == [0, 1, 2] and line["y"] == pytest.approx([1.0, 0.5, 0.25])


def test_mtp_layer_is_labelled_and_left_out_of_trunk_aggregates_unless_picked():
    """Shipped demo trace: routing rows of layers 0..7 and of the MTP layer under index 8. By default the load
    heatmap has the 8 decoder layers; picking MTP in the sidebar adds a row labelled MTP, never L8. Its numbers are
    a direct count of layer 8's routing rows."""
    at = run_page(NANO, "routing", NANO_TRACE)
    heat = chart_data(at, "Expert load per layer")[0]
    assert heat["y"] == [f"L{i}" for i in range(8)]
    assert chart_data(at, "Load balance per layer")[0]["x"] == [f"L{i}" for i in range(8)]
    at.sidebar.multiselect(key="layers").select("MTP").select("L3 attention").run()
    heat = chart_data(at, "Expert load per layer")[0]
    assert heat["y"] == ["L3", "MTP"]
    db = TraceDB(NANO)
    counts = db.frame("SELECT e, count(*) AS n FROM (SELECT unnest(topk_ids) AS e FROM routing WHERE run_id = ? AND "
                      "layer = 8) GROUP BY e", [NANO_TRACE]).set_index("e").n
    expected = np.zeros(128)
    expected[counts.index.to_numpy()] = counts.to_numpy() / counts.sum()
    mtp_row = np.asarray(heat["z"], dtype=float)[1]
    assert np.nan_to_num(mtp_row) == pytest.approx(expected, abs=1e-6)  # never-chosen cells blank, counted apart
    assert layer_label(8, (8,)) == "MTP" and layer_label(7, (8,)) == "L7"


def test_top1_expert_is_categorical_and_spans_are_outlined():
    """Tokens at positions 10..29 in rows of 8; span 'needle' [12, 20) covers row 0 columns 2..7 and row 1 columns
    0..1. Expert ids 7, 3, 7, 120 -> categories 1, 0, 1, 2 (sorted ids 3, 7, 120), each its own colour."""
    experts = [7, 3, 7, 120] * 5
    frame = pd.DataFrame({"position": range(10, 30), "token": [f"t{i}" for i in range(20)], "value": experts})
    spans = pd.DataFrame({"span": ["needle"], "start_token": [12], "end_token": [20]})
    figure = views.token_strip_figure(frame, "top-1 expert", 3, per_row=8, spans=spans)
    heat = figure.data[0]
    assert np.asarray(heat.z, dtype=float)[0, :4].tolist() == [1, 0, 1, 2]
    assert list(heat.colorbar.ticktext) == ["3", "7", "120"] and (heat.zmin, heat.zmax) == (-0.5, 2.5)
    colours = [heat.colorscale[2 * i][1] for i in range(3)]
    assert len(set(colours)) == 3 and all(heat.colorscale[2 * i + 1][1] == colours[i] for i in range(3))
    boxes = [(s.x0, s.x1, s.y0, s.y1) for s in figure.layout.shapes]
    assert boxes == [(1.5, 7.5, -0.5, 0.5), (-0.5, 1.5, 0.5, 1.5)]
    assert [a.text for a in figure.layout.annotations] == ["needle"]
    plain = views.token_strip_figure(frame.assign(value=np.linspace(0, 1, 20)), "router entropy", 3, per_row=8)
    assert plain.data[0].colorscale[0][1] != colours[0] and not plain.layout.shapes  # a ramp, no spans given


def test_token_explorer_page_outlines_the_sequences_spans():
    """The shipped trace's first sequence (passkey, needle [750, 755), query [1011, 1013), answer [1019, 1024)):
    the page opens 64 tokens before the needle and outlines every span inside its 384-token window; the layer list
    of a routing metric names the MTP layer 'MTP'."""
    from support.app_pages import chart_specs, title_of

    at = run_page(NANO, "token_explorer", NANO_TRACE)
    spec = next(s for s in chart_specs(at) if "per token at layer" in title_of(s))
    shown = set(range(686, 1025))  # window [750 - 64, min(1025, 686 + 384))
    db = TraceDB(NANO)
    spans = db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = ?",
                     [NANO_TRACE, "passkey_1024-s0-0000"])
    inside = [r.span for r in spans.itertuples() if set(range(r.start_token, r.end_token)) & shown]
    assert sorted(inside) == ["answer", "needle", "query"]
    outlined = {shape["name"] for shape in spec["layout"]["shapes"]}
    assert outlined == set(inside)
    assert at.selectbox(key="explorer_metric").value == "top-1 expert"
    assert at.selectbox(key="explorer_layer").options[-2:] == ["L7 attention", "MTP"]  # routing rows of layer 8
