"""Figures of the Multi-token prediction page: draft acceptance by label and by position, MTP vs trunk routing."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .common import COLOURS, empty_figure, layer_label

MEASURES = {"accepted": "greedy acceptance", "ties": "exact ties (neither)", "draft_correct": "draft = actual token"}


def acceptance_bars(frame: pd.DataFrame, category: str, title: str, axis_title: str) -> go.Figure:
    """Rows of an acceptance_by_* frame -> grouped bars (greedy acceptance, draft = actual token) per `category`,
    categories in the frame's order; hover gives the row count."""
    if frame.empty:
        return empty_figure(title, "no MTP rows")
    figure = go.Figure()
    for index, (column, name) in enumerate(MEASURES.items()):
        figure.add_trace(go.Bar(x=frame[category].astype(str), y=frame[column], name=name,
                                marker_color=COLOURS[index], customdata=frame["rows"],
                                hovertemplate=f"%{{x}}<br>{name} %{{y:.1%}}<br>%{{customdata}} rows<extra></extra>"))
    figure.update_layout(title=title, xaxis_title=axis_title, yaxis_title="share of MTP rows", barmode="group",
                         yaxis_range=[0, 1], yaxis_tickformat=".0%")
    figure.update_xaxes(type="category")
    return figure


def routing_overlap_bars(frame: pd.DataFrame, mtp_layer: int, chance: float | None) -> go.Figure:
    """mtp_routing_overlap rows -> one bar per trunk layer (categories), a dotted line at chance."""
    # the MTP layer is no decoder layer: its routing rows sit under index num_hidden_layers, never drawn as "L<n>"
    title = (f"Expert overlap: the MTP layer (routing rows under layer index {mtp_layer}) at row t vs each trunk "
             "layer at position t+1")
    if frame.empty:
        return empty_figure(title, "no routing rows for the MTP layer (trace with routing and --mtp)")
    figure = go.Figure(go.Bar(x=[layer_label(x) for x in frame.layer], y=frame.jaccard, marker_color=COLOURS[0],
                              customdata=frame["rows"],
                              hovertemplate="trunk %{x}<br>Jaccard %{y:.3f}<br>%{customdata} rows<extra></extra>"))
    if chance is not None:
        figure.add_hline(y=chance, line_dash="dot", annotation_text=f"chance ~{chance:.3f}",
                         annotation_position="top left")
    figure.update_layout(title=title, xaxis_title="trunk layer", yaxis_title="mean Jaccard of the top-k sets")
    figure.update_xaxes(type="category")
    return figure
