"""Figures of the Long context page besides the needle sweep: attention needle mass beside DeltaNet needle
contribution per layer, state-capacity heatmaps, and the layer-ablation intervention's accuracy."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ...analysis.needle import MAX_HEAD_TITLE
from .common import COLOURS, empty_figure, heatmap, layer_label


def needle_by_layer_figure(frame: pd.DataFrame, span: str = "needle") -> go.Figure:
    """needle_by_layer rows -> grouped bars per layer: needle mass of the max head (attention layers; the hover names
    the head), DeltaNet norm ratio and projection (DeltaNet layers), on one axis whose title names the aggregates."""
    title = f"Where the '{span}' reaches the output: needle mass vs DeltaNet contribution"
    if frame.empty:
        return empty_figure(title, f"no attention or deltanet_contribution rows for span {span!r}")
    figure = go.Figure()
    for index, (measure, rows) in enumerate(frame.groupby("measure", sort=True)):
        heads = ["" if pd.isna(h) else f"head {int(h)}, " for h in rows["head"]]
        figure.add_bar(x=[layer_label(layer) for layer in rows.layer], y=rows.value, name=measure,
                       marker_color=COLOURS[index % len(COLOURS)], customdata=list(zip(heads, rows["rows"])),
                       hovertemplate="%{x}<br>%{customdata[0]}%{customdata[1]} rows<br>%{y:.4g}<extra>"
                                     + measure + "</extra>")
    order = [layer_label(layer) for layer in sorted(frame.layer.unique())]
    figure.update_layout(title=title, xaxis_title="layer", barmode="group",
                         yaxis_title=f"{MAX_HEAD_TITLE}; DeltaNet: share of the output")
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    return figure


def capacity_heatmaps(grid: pd.DataFrame, value_title: str) -> list[go.Figure]:
    """capacity_grid rows -> per (layer, context) a pairs planted x keys written after heatmap of the value."""
    figures = []
    for (layer, context), rows in grid.groupby(["layer", "context_length"], sort=True):
        where = "pairs back to back" if context == 0 else f"{context}-token context"
        figures.append(heatmap(rows, "pairs", "keys_after", "value", f"{layer_label(layer)}, {where}: {value_title}",
                               value_title, text=True, row_title="pairs planted",
                               column_title="keys written after the key", zmin=0.0))
    return figures


def capacity_accuracy_figure(grid: pd.DataFrame) -> go.Figure:
    """capacity_grid rows -> accuracy against pairs planted, one line per context."""
    title = "Associative recall accuracy (held-out) vs pairs planted"
    if grid.empty:
        return empty_figure(title, "no state_capacity rows")
    accuracy = grid.groupby(["context_length", "pairs"], as_index=False)["accuracy"].mean()
    figure = go.Figure()
    for index, (context, rows) in enumerate(accuracy.groupby("context_length")):
        figure.add_scatter(x=rows.pairs, y=rows.accuracy, mode="lines+markers", marker_color=COLOURS[index],
                           name="back to back" if context == 0 else f"{context} tokens")
    figure.update_layout(title=title, xaxis_title="pairs planted", yaxis_title="exact match", yaxis_range=[0, 1.05])
    figure.update_xaxes(type="log")
    return figure


def ablation_figure(results: pd.DataFrame, suite: str) -> go.Figure:
    """ablation_results rows of one suite -> exact match per condition, one bar group per mode; labelled an
    intervention in the title."""
    title = f"INTERVENTION (layer ablation), {suite}: exact match with layers' outputs replaced"
    rows = results[results.suite == suite]
    if rows.empty:
        return empty_figure(title, f"no layer_ablation rows for suite {suite!r}")
    order = list(dict.fromkeys(rows.condition))
    figure = go.Figure()
    for index, (mode, part) in enumerate(rows.groupby("mode", sort=True)):
        figure.add_bar(x=part.condition, y=part.exact_match, name="no ablation" if mode == "-" else f"{mode} output",
                       marker_color=COLOURS[index % len(COLOURS)])
    figure.update_layout(title=title, xaxis_title="ablated", yaxis_title="exact match", yaxis_range=[0, 1.05],
                         barmode="group")
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    return figure
