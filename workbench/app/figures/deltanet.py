"""DeltaNet state figures: plain functions DataFrame -> plotly Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ...analysis.deltanet import RECALL_MEASURES
from .common import COLOURS, empty_figure, heatmap, layer_label, quantile_boxes

SPAN_LINE = ["orange", "deepskyblue", "seagreen", "orchid"]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def add_span_markers(figure: go.Figure, spans: pd.DataFrame) -> go.Figure:
    """Dashed lines at each span's first token, labelled at stacked heights (spans: span, start_token, end_token)."""
    for index, row in enumerate(spans.sort_values("start_token").itertuples()):
        colour = SPAN_LINE[index % len(SPAN_LINE)]
        figure.add_vrect(x0=row.start_token - 0.5, x1=max(row.end_token, row.start_token + 1) - 0.5, line_width=0,
                         fillcolor=colour, opacity=0.15)
        figure.add_annotation(x=row.start_token, y=1.0 - 0.07 * (index % 4), xref="x", yref="paper", text=row.span,
                              showarrow=False, xanchor="left", yanchor="top", font={"size": 11, "color": colour})
    return figure


def state_norm_figure(curves: pd.DataFrame, spans: pd.DataFrame | None = None, log_y: bool = True,
                      show_max: bool = False) -> go.Figure:
    """||S_t||_F against position, one colour per layer: a line for the mean over heads and, with `show_max`, a faint
    dotted line for the largest head (no filled band that would hide other layers); spans of the sequence marked.
    curves: state_norm_curves rows (layer, position, state_norm_mean, state_norm_max)."""
    title = "State norm ||S_t||_F per layer, mean over heads" + (" (dotted: largest head)" if show_max else "")
    if curves.empty:
        return empty_figure(title, "no data")
    figure = go.Figure()
    for index, (layer, rows) in enumerate(curves.groupby("layer", sort=True)):
        colour = COLOURS[index % len(COLOURS)]
        name = layer_label(layer)
        figure.add_trace(go.Scatter(x=rows.position, y=rows.state_norm_mean, mode="lines", name=name,
                                    legendgroup=name, line={"color": colour, "width": 2},
                                    hovertemplate=f"{name} position %{{x}}<br>mean %{{y:.4g}}<extra></extra>"))
        if not show_max:
            continue
        figure.add_trace(go.Scatter(x=rows.position, y=rows.state_norm_max, mode="lines", name=f"{name} max",
                                    legendgroup=name, showlegend=False,
                                    line={"color": _rgba(colour, 0.6), "width": 1, "dash": "dot"},
                                    hovertemplate=f"{name} position %{{x}}<br>largest head %{{y:.4g}}<extra></extra>"))
    if spans is not None:
        add_span_markers(figure, spans)
    figure.update_layout(title=title, xaxis_title="position", yaxis_title="||S_t||_F" + (" (log)" if log_y else ""))
    if log_y:
        figure.update_yaxes(type="log", exponentformat="power")
    return figure


def head_state_norm_figure(curves: pd.DataFrame, layer: int, spans: pd.DataFrame | None = None) -> go.Figure:
    """Per-head ||S_t||_F against position for one layer (head_norm_curves rows: position, head, state_norm)."""
    title = f"State norm per value head, layer {layer_label(layer)}"
    if curves.empty:
        return empty_figure(title, "no per-head rows (trace with --deltanet-head-stride or --deltanet-heads per_head)")
    figure = go.Figure()
    for index, (head, rows) in enumerate(curves.groupby("head")):
        figure.add_trace(go.Scatter(x=rows.position, y=rows.state_norm, mode="lines+markers", name=f"head {head}",
                                    line={"color": COLOURS[index % len(COLOURS)]}))
    if spans is not None:
        add_span_markers(figure, spans)
    figure.update_layout(title=title, xaxis_title="position", yaxis_title="||S_t||_F")
    return figure


def gate_box_figure(quantiles: pd.DataFrame, column: str) -> go.Figure:
    """gate_quantiles rows -> one box per DeltaNet layer (layer categories: attention layers get no box)."""
    titles = {"decay_mean": ("Decay exp(g) per token, mean over heads", "exp(g)"),
              "beta_mean": ("Write strength beta per token, mean over heads", "beta"),
              "half_life_mean": ("Memory half-life per token, mean over heads", "half-life (tokens)")}
    title, value = titles.get(column, (column, column))
    return quantile_boxes(quantiles, title, value)


def head_heatmap(summary: pd.DataFrame, value: str, title: str, colour: str, log10: bool = False) -> go.Figure:
    """head_summary rows -> layer x value-head heatmap; only DeltaNet layers appear (categories)."""
    frame = summary
    if log10:
        with np.errstate(divide="ignore"):
            frame = summary.assign(**{value: np.log10(summary[value].astype(float))})
        colour = f"log10 {colour}"
    return heatmap(frame, "layer", "head", value, title, colour, column_title="value head")


def half_life_heatmap(summary: pd.DataFrame) -> go.Figure:
    return head_heatmap(summary, "half_life", "Memory half-life per layer and head (tokens, log10)", "half-life",
                        log10=True)


def recall_figure(curves: pd.DataFrame, metric: str = "retention_cos_mean") -> go.Figure:
    """State recall against tokens since the key: one line per (layer, pair). curves: recall_curves rows; metric: a
    RECALL_MEASURES column, named with its aggregate on the y axis. Cosines are drawn on [-1, 1], the retention ratio
    from 0."""
    label = RECALL_MEASURES.get(metric, metric)
    if curves.empty:
        return empty_figure("State recall of planted pairs", "no planted pair")
    figure = go.Figure()
    for index, ((layer, pair), rows) in enumerate(curves.groupby(["layer", "pair"])):
        figure.add_trace(go.Scatter(x=rows.distance, y=rows[metric], mode="lines",
                                    name=f"{layer_label(layer)} pair {pair}",
                                    line={"color": COLOURS[index % len(COLOURS)]}))
    figure.update_layout(title="State recall of planted pairs", xaxis_title="tokens since the key", yaxis_title=label)
    if metric.startswith(("cos", "retention_cos")):
        figure.update_yaxes(range=[-1.05, 1.05])
    else:
        figure.update_yaxes(rangemode="tozero")
    return figure


def snapshot_heatmap(snapshots: pd.DataFrame, position: int) -> go.Figure:
    rows = snapshots[snapshots.position == position]
    return heatmap(rows, "layer", "head", "eff_rank", f"Effective rank of S_t at position {position}",
                   "effective rank", column_title="value head")
