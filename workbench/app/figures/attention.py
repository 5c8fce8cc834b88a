"""Attention recall figures: plain functions DataFrame -> plotly Figure."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ...analysis.needle import ROWS
from .common import COLOURS, empty_figure, heatmap

SPAN_COLOURS = ["rgba(255,165,0,0.25)", "rgba(0,160,255,0.2)", "rgba(0,200,120,0.2)", "rgba(200,0,200,0.15)"]


def layer_head_heatmap(frame: pd.DataFrame, value: str, title: str, colour: str, zmax: float | None = 1.0
                       ) -> go.Figure:
    """Long (layer, head, value) rows -> layer x head heatmap, layers as categories, values printed."""
    return heatmap(frame, "layer", "head", value, title, colour, zmin=0.0, zmax=zmax, text=True)


def span_mass_heatmap(mass: pd.DataFrame, span: str) -> go.Figure:
    """needle.needle_mass rows -> layer x head heatmap of the needle mass of `span` (the title names the aggregate)."""
    return layer_head_heatmap(mass, "mass", f"Needle mass on '{span}' per layer and head ({ROWS})",
                              "needle mass<br>(mean over rows<br>after the span)")


def sink_heatmap(summary: pd.DataFrame) -> go.Figure:
    return layer_head_heatmap(summary, "sink_mass", "Attention-sink mass (weight on token 0)", "sink mass")


def entropy_heatmap(summary: pd.DataFrame) -> go.Figure:
    return layer_head_heatmap(summary, "entropy", "Attention entropy (nats, mean over query rows)", "entropy",
                              zmax=None)


def gate_heatmap(summary: pd.DataFrame, value: str = "gate_mean") -> go.Figure:
    title = {"gate_mean": "Mean output gate sigmoid(gate)", "gate_low_fraction": "Fraction of gate entries < 0.1"}
    return layer_head_heatmap(summary, value, title.get(value, value), value)


def retrieval_heatmap(scores: pd.DataFrame) -> go.Figure:
    return layer_head_heatmap(scores, "score", "Retrieval score (fraction of copy steps the head copied)", "score")


def query_attention_figure(topk: pd.DataFrame, tokens: pd.DataFrame, spans: pd.DataFrame, position: int) -> go.Figure:
    """One query's top-k attended keys per head: x = key position, y = weight (log axis, powers of ten), colour =
    head. Spans are shaded bands with their names stacked at different heights (never overprinted); a key inside a
    span is a filled circle, outside an open one, and the hover says which span holds it.
    topk: query_topk rows; tokens: position, token; spans: span, start_token, end_token."""
    title = f"Top-k attention of the query token at position {position}"
    if topk.empty:
        return empty_figure(title, "no analysed row at this position and layer")
    token_of = dict(zip(tokens["position"], tokens["token"]))
    spans = spans[spans.end_token > spans.start_token].sort_values("start_token").reset_index(drop=True)

    def span_of(key: int) -> str:
        inside = [s.span for s in spans.itertuples() if s.start_token <= key < s.end_token]
        return inside[0] if inside else "outside every span"

    figure = go.Figure()
    for index, (head, rows) in enumerate(topk.groupby("head")):
        where = [span_of(k) for k in rows.key_position]
        figure.add_trace(go.Scatter(
            x=rows.key_position, y=rows.weight, mode="markers", name=f"head {head}",
            marker={"size": 10, "color": COLOURS[index % len(COLOURS)],
                    "symbol": ["circle" if w != "outside every span" else "circle-open" for w in where],
                    "line": {"width": 2, "color": COLOURS[index % len(COLOURS)]}},
            customdata=[[token_of.get(k, ""), r, w] for k, r, w in zip(rows.key_position, rows["rank"], where)],
            hovertemplate="key %{x} %{customdata[0]}<br>weight %{y:.3g}<br>rank %{customdata[1]}<br>"
                          "%{customdata[2]}<extra>head " + str(head) + "</extra>"))
    for index, row in enumerate(spans.itertuples()):
        figure.add_vrect(x0=row.start_token - 0.5, x1=row.end_token - 0.5, line_width=0,
                         fillcolor=SPAN_COLOURS[index % len(SPAN_COLOURS)])
        figure.add_annotation(x=row.start_token - 0.5, y=1.0 - 0.07 * (index % 4), xref="x", yref="paper",
                              text=f"{row.span} [{row.start_token}, {row.end_token})", showarrow=False,
                              xanchor="left", yanchor="top", bgcolor="rgba(255,255,255,0.8)", font={"size": 11})
    figure.add_vline(x=position, line_dash="dot", line_color="grey")
    figure.add_annotation(x=position, y=0.0, xref="x", yref="paper", text="query", showarrow=False,
                          xanchor="right", yanchor="bottom", font={"size": 11, "color": "grey"})
    figure.update_layout(title=title + " (filled: key inside a span; open: outside)", xaxis_title="key position",
                         yaxis_title="attention weight (log)")
    figure.update_yaxes(type="log", exponentformat="power")
    return figure
