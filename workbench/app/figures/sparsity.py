"""Sparsity probe figures: plain functions DataFrame -> plotly Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .common import COLOURS, empty_figure, heatmap, layer_label, mark_never_chosen

CRITERION_COLOURS = {"frequency": COLOURS[0], "reap": COLOURS[1], "random": COLOURS[2]}


def saliency_heatmap(saliency: pd.DataFrame, value: str = "reap", num_experts: int | None = None) -> go.Figure:
    """expert_saliency rows -> layer x expert heatmap of `value` (reap, count, gate_mean, output_norm_mean). Experts
    with no row (never chosen in that layer; every expert id below `num_experts`, or up to the largest id seen) are
    grey cells, counted in the title: their saliency is undefined, not zero and not a gap."""
    titles = {"reap": "REAP score (mean gate x ||expert output||)", "count": "tokens routed",
              "gate_mean": "mean gate weight", "output_norm_mean": "mean ||expert output||"}
    title = f"Expert saliency per layer: {titles[value]}"
    if saliency.empty:
        return heatmap(saliency, "layer", "expert", value, title, value)
    experts = int(num_experts or saliency.expert.max() + 1)
    grid = pd.DataFrame({"layer": sorted(saliency.layer.unique())}).merge(
        pd.DataFrame({"expert": np.arange(experts)}), how="cross")
    full = grid.merge(saliency, on=["layer", "expert"], how="left").fillna({"count": 0})
    full[value] = full[value].fillna(0.0)  # drawn grey below, never as a value
    figure = heatmap(full, "layer", "expert", value, title, value, zmin=0.0)
    counts = full.pivot_table(index="layer", columns="expert", values="count", aggfunc="sum").sort_index()
    never = mark_never_chosen(figure, counts.to_numpy())
    figure.update_layout(title=f"{title}; grey: never chosen ({never} of {counts.size} layer x expert cells)")
    return figure


def shared_share_figure(share: pd.DataFrame) -> go.Figure:
    """shared_expert_share rows -> per layer the shared expert's share of the MoE output, 0..1."""
    if share.empty:
        return empty_figure("Shared expert's share of the MoE output", "no data")
    figure = go.Figure(go.Bar(x=[layer_label(x) for x in share.layer], y=share.share_mean, marker_color=COLOURS[3]))
    figure.update_layout(title="Shared expert's share of the MoE output: ||c|| / (||c|| + ||r||), mean over tokens",
                         xaxis_title="layer", yaxis_title="share", yaxis_range=[0, 1])
    figure.update_xaxes(type="category")
    return figure


def label_js_figure(js: pd.DataFrame) -> go.Figure:
    """label_js_by_layer rows -> per layer the mean JS divergence between labels, trained vs random init."""
    if js.empty:
        return empty_figure("Label JS divergence per layer", "no data")
    figure = go.Figure()
    for index, (model, group) in enumerate(js.groupby("model", sort=True)):
        figure.add_trace(go.Bar(x=[layer_label(x) for x in group.layer], y=group.js_bits, name=model,
                                marker_color=COLOURS[index]))
    figure.update_layout(title="JS divergence between labels' expert loads per layer (mean over label pairs)",
                         xaxis_title="layer", yaxis_title="JS (bits)", barmode="group")
    figure.update_xaxes(type="category")
    return figure


def pruning_figure(curves: pd.DataFrame, value: str = "accuracy") -> go.Figure:
    """pruning_curves rows -> `value` (accuracy: mean exact match; loss: held-out nats) against the fraction of
    experts masked per layer, one line per criterion. An intervention: the title says so."""
    title = ("INTERVENTION (experts masked): " + ("mean exact match over suites" if value == "accuracy"
                                                  else "held-out loss (nats)") + " vs fraction of experts masked")
    if curves.empty:
        return empty_figure(title, "no data")
    figure = go.Figure()
    for criterion, group in curves.groupby("criterion", sort=True):
        figure.add_trace(go.Scatter(x=group.fraction, y=group[value], name=criterion, mode="lines+markers",
                                    marker_color=CRITERION_COLOURS.get(criterion, COLOURS[4])))
    figure.update_layout(title=title, xaxis_title="fraction of each layer's experts masked",
                         yaxis_title="mean exact match" if value == "accuracy" else "held-out loss (nats)",
                         xaxis_tickformat=".0%")
    if value == "accuracy":  # a share: from zero, so a drop from 0.95 to 0.90 is not drawn as a collapse
        figure.update_yaxes(range=[0, 1.05])
    return figure
