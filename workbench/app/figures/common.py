"""Shared figure helpers: layers as categories, heatmaps of long frames, box plots drawn from quantiles."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...trace.layer_labels import MTP_LABEL

COLOURS = ["#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF",
           "#FECB52"]


def layer_label(layer, mtp_layers: Collection[int] = ()) -> str:
    """Layers are categories on every axis: 'L3', never a number on a continuous axis. A layer in `mtp_layers`
    (RunFacts.mtp_layers: an MTP layer's routing rows sit under index num_hidden_layers) is 'MTP', never 'L8' as if it
    were one more decoder layer."""
    return MTP_LABEL if int(layer) in mtp_layers else f"L{int(layer)}"


def empty_figure(title: str, message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(title=title, xaxis_visible=False, yaxis_visible=False)
    return figure


def heatmap(frame: pd.DataFrame, row: str, column: str, value: str, title: str, colour: str, *,
            zmin: float | None = None, zmax: float | None = None, text: bool = False, row_title: str | None = None,
            column_title: str | None = None, colorscale: str = "Viridis", zmid: float | None = None,
            row_format=None, column_format=None, mtp_layers: Collection[int] = ()) -> go.Figure:
    """Long rows -> heatmap with categorical axes: only rows/columns present in `frame` appear (a layer without
    data gets no row), in the sort order of the values (numbers numerically), labelled by `row_format` /
    `column_format` (default: layer_label for layers, MTP for `mtp_layers`; else str)."""
    if frame.empty:
        return empty_figure(title, "no data")
    matrix = frame.pivot_table(index=row, columns=column, values=value, aggfunc="mean").sort_index()
    layers = partial(layer_label, mtp_layers=mtp_layers)
    row_format = row_format or (layers if row == "layer" else str)
    column_format = column_format or (layers if column == "layer" else str)
    y = [row_format(r) for r in matrix.index]
    x = [column_format(c) for c in matrix.columns]
    values = matrix.to_numpy(dtype=float)
    trace = go.Heatmap(z=values, x=x, y=y, zmin=zmin, zmax=zmax, zmid=zmid, colorscale=colorscale,
                       colorbar={"title": {"text": colour}},
                       hovertemplate=f"{row_title or row} %{{y}}<br>{column_title or column} %{{x}}<br>{colour} "
                                     f"%{{z:.4g}}<extra></extra>")
    if text and values.size <= 400:
        trace.update(text=np.round(values, 2), texttemplate="%{text}")
    figure = go.Figure(trace)
    figure.update_layout(title=title, xaxis_title=column_title or column, yaxis_title=row_title or row)
    figure.update_xaxes(type="category")
    figure.update_yaxes(type="category", autorange="reversed")
    return figure


def quantile_boxes(quantiles: pd.DataFrame, title: str, value_title: str, mtp_layers: Collection[int] = (),
                   share: bool = False) -> go.Figure:
    """One box per layer from precomputed quantiles (layer, p05, p25, p50, p75, p95, mean): whiskers at 5% and 95%,
    so no raw rows are needed. share: the value is a share in [0, 1], drawn on an axis from 0 to 1."""
    if quantiles.empty:
        return empty_figure(title, "no data")
    x = [layer_label(layer, mtp_layers) for layer in quantiles.layer]
    figure = go.Figure(go.Box(x=x, q1=quantiles.p25, median=quantiles.p50, q3=quantiles.p75,
                              lowerfence=quantiles.p05, upperfence=quantiles.p95, mean=quantiles["mean"],
                              name=value_title, boxpoints=False, marker_color=COLOURS[0]))
    figure.update_layout(title=title, xaxis_title="layer", yaxis_title=f"{value_title} (box 25-75%, whiskers 5-95%)",
                         showlegend=False)
    if share:
        figure.update_yaxes(range=[0, 1.05])
    figure.update_xaxes(type="category")
    return figure


NEVER_CHOSEN = "#c8c8c8"


def mark_never_chosen(figure: go.Figure, counts: np.ndarray) -> int:
    """Cells of the figure's heatmap (its first trace) whose `counts` [rows, columns] is 0 are experts never chosen:
    blank their value and draw them in one grey with hover 'never chosen', so no cell is an unexplained gap. Returns
    how many cells were marked."""
    heat = figure.data[0]
    never = np.asarray(counts) == 0
    values = np.asarray(heat.z, dtype=float).copy()
    values[never] = np.nan
    heat.update(z=values)
    if heat.text is not None:
        text = np.asarray(heat.text, dtype=object)
        text[never] = ""
        heat.update(text=text)
    figure.add_trace(go.Heatmap(
        z=np.where(never, 1.0, np.nan), x=heat.x, y=heat.y, colorscale=[[0, NEVER_CHOSEN], [1, NEVER_CHOSEN]],
        showscale=False, name="never chosen", xgap=heat.xgap, ygap=heat.ygap,
        hovertemplate="%{y}, expert %{x}: never chosen<extra></extra>"))
    return int(never.sum())
