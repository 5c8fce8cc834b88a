"""The dashboard's figures are pure functions of analysis frames: they hold the frames' numbers, layers are
categories (a layer without data gets no row), span labels never share a height, log axes read as powers of ten."""

import numpy as np
import pandas as pd
import pytest

from workbench.analysis import attention, deltanet, long_context, needle, routing, routing_structure, tokens
from workbench.analysis.db import Scope
from workbench.app.figures import attention as attention_figures
from workbench.app.figures import deltanet as deltanet_figures
from workbench.app.figures import routing as routing_figures
from workbench.app.figures import views


def test_expert_load_heatmap_rows_are_the_moe_layers_as_categories(db, scope):
    figure = routing_figures.expert_load_heatmap(routing.expert_load(db, scope, 4))
    heat = figure.data[0]
    assert list(heat.y) == ["L0", "L2"] and list(heat.x) == ["0", "1", "2", "3"]
    assert np.asarray(heat.z).ravel().tolist() == pytest.approx([0.4, 0.2, 0.2, 0.2, 0.1, 0.2, 0.4, 0.3])
    assert figure.layout.yaxis.type == "category" and figure.layout.xaxis.title.text == "expert"


def test_deltanet_heatmaps_and_boxes_have_no_attention_layer_row(db, scope):
    summary = deltanet.head_summary(db, scope)
    figure = deltanet_figures.half_life_heatmap(summary)
    assert list(figure.data[0].y) == ["L1"]  # layer 3 (attention) gets no row, layer 2 is not stretched
    assert np.asarray(figure.data[0].z).ravel().tolist() == pytest.approx(np.log10([np.log(2) / 0.7, np.log(2) / 0.1]))
    boxes = deltanet_figures.gate_box_figure(deltanet.gate_quantiles(db, scope, "decay_mean"), "decay_mean")
    assert list(boxes.data[0].x) == ["L1"] and boxes.layout.xaxis.type == "category"
    assert list(boxes.data[0].median) == pytest.approx([0.75])


def test_state_norm_figure_draws_lines_not_covering_bands_and_marks_spans(db, scope):
    spans = db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = 's0'",
                     [scope.run_id])
    figure = deltanet_figures.state_norm_figure(deltanet.state_norm_curves(db, scope, "s0"), spans, show_max=True)
    assert [trace.fill for trace in figure.data] == [None, None]  # no filled band
    assert list(figure.data[0].y) == pytest.approx([1, 2, 3]) and list(figure.data[1].y) == pytest.approx([2, 3, 4])
    assert {a.text for a in figure.layout.annotations} == {"needle", "question"}
    assert figure.layout.yaxis.type == "log" and figure.layout.yaxis.exponentformat == "power"


def test_query_attention_figure_stacks_span_labels_and_marks_keys_inside_spans(db, scope):
    topk = attention.query_topk(db, scope, "s0", 2, 3)
    tokens_frame = db.frame("SELECT position, token FROM tokens WHERE run_id = ? AND seq_id = 's0'", [scope.run_id])
    spans = db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = 's0'",
                     [scope.run_id])
    figure = attention_figures.query_attention_figure(topk, tokens_frame, spans, 2)
    labels = [a for a in figure.layout.annotations if "[" in a.text]
    assert [a.text for a in labels] == ["needle [0, 1)", "question [1, 2)"]
    assert len({a.y for a in labels}) == 2  # different heights: never overprinted
    head0 = figure.data[0]
    assert list(head0.x) == [0, 2] and list(head0.y) == pytest.approx([0.6, 0.4])
    assert list(head0.marker.symbol) == ["circle", "circle-open"]  # key 0 in the needle, key 2 outside every span
    assert figure.layout.yaxis.exponentformat == "power"


def test_span_mass_and_retrieval_heatmaps_hold_the_numbers(db, scope):
    figure = attention_figures.span_mass_heatmap(needle.needle_mass(db, scope, "needle"), "needle")
    assert list(figure.data[0].y) == ["L3"] and np.asarray(figure.data[0].z).ravel().tolist() == pytest.approx(
        [1 / 3, 1.6 / 3])
    assert "mean over query rows after the span" in figure.layout.title.text  # the aggregate is named
    scores = attention_figures.retrieval_heatmap(attention.retrieval_summary(db, scope))
    assert np.asarray(scores.data[0].z).ravel().tolist() == pytest.approx([0.75, 0.25])


def test_balance_label_and_coactivation_figures(db, scope):
    load = routing.expert_load(db, scope, 4)
    from workbench.analysis.balance import label_divergence, load_balance

    balance = routing_figures.balance_figure(load_balance(load))
    assert list(balance.data[1].y) == pytest.approx([1.6, 1.6]) and list(balance.data[1].x) == ["L0", "L2"]
    divergence = routing_figures.label_divergence_heatmap(label_divergence(routing.load_by_label(db, scope, 4)))
    assert list(divergence.data[0].y) == ["x vs y"] and list(divergence.data[0].x) == ["L0", "L2"]
    assert np.asarray(divergence.data[0].z)[0, 0] == pytest.approx(0.453358, abs=1e-5)
    counts, joint = routing_structure.coactivation(db, scope, 0, 4)
    order = routing_structure.clustered_order(counts, joint)
    heat = routing_figures.coactivation_heatmap(counts, joint, order, 0).data[0]
    z = np.asarray(heat.z)
    p = {(i, j): z[a, b] for a, i in enumerate(heat.y) for b, j in enumerate(heat.x)}
    assert sorted(heat.y) == ["0", "1", "2", "3"] and list(heat.x) == list(heat.y)
    assert p[("1", "0")] == pytest.approx(1.0) and p[("0", "1")] == pytest.approx(0.5) and p[("0", "0")] == 0


def test_token_strip_sweep_and_compare_figures(db, scope, hand_trace):
    strip = views.token_strip_figure(tokens.token_metric(db, scope, "s0", 0, "router entropy"), "router entropy", 0,
                                     per_row=2)
    z = np.asarray(strip.data[0].z, dtype=float)
    assert z.shape == (2, 2) and z[0].tolist() == [1.0, 2.0] and z[1, 0] == 3.0 and np.isnan(z[1, 1])
    assert np.asarray(strip.data[0].text)[0].tolist() == ["w5", "w6"]
    figures = views.sweep_heatmaps(long_context.sweep_grid(db, scope, "exact_match"), "exact match")
    assert [f.layout.title.text.split(" ")[0] for f in figures] == ["L1", "L3"]
    heat = figures[1].data[0]
    assert list(heat.x) == ["64", "128"] and list(heat.y) == ["0%", "50%"]
    assert np.asarray(heat.z).ravel().tolist() == pytest.approx([1, 0.5, 1, 0.5])
    run_b = hand_trace[1]["b"]
    agreement = views.agreement_figure(routing_structure.run_agreement(db, scope, run_b))
    assert list(agreement.data[0].y) == pytest.approx([2 / 3, 1 / 3]) and list(agreement.data[0].x) == ["L0", "L2"]
    difference = views.load_difference_heatmap(routing.expert_load(db, scope, 4),
                                               routing.expert_load(db, Scope(run_b), 4))
    # layer 0: A 0.4 0.2 0.2 0.2; B (s0 only: [0,1] [2,0] [1,3]) 2/6 2/6 1/6 1/6
    assert np.asarray(difference.data[0].z)[0].tolist() == pytest.approx([2 / 6 - .4, 2 / 6 - .2, 1 / 6 - .2,
                                                                          1 / 6 - .2])
    empty = views.agreement_figure(pd.DataFrame(columns=["layer", "tokens", "top1_agreement", "jaccard"]))
    assert empty.layout.annotations[0].text == "no tokens in common"


def test_histogram_figure_gives_each_layer_its_fraction_of_tokens(db, scope):
    figure = routing_figures.histogram_figure(routing.metric_histogram(db, scope, "router_entropy", bins=4),
                                              "entropy", "nats")
    layer0 = next(trace for trace in figure.data if trace.name == "L0")
    assert list(layer0.x) == pytest.approx([1.5, 2.5, 3.5, 4.5]) and list(layer0.y) == pytest.approx([.2, .2, .2, .4])
