"""Figures of the DeltaNet state page: plain functions DataFrame -> plotly Figure, testable without Streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

COLOURS = px.colors.qualitative.Plotly


def state_norm_figure(frame: pd.DataFrame) -> go.Figure:
    """||S_t||_F against position, one colour per layer: the line is the mean over heads, the band reaches up
    to the largest head. frame: sequence_state rows (layer, position, state_norm_mean, state_norm_max)."""
    figure = go.Figure()
    for index, (layer, rows) in enumerate(frame.groupby("layer", sort=True)):
        colour = COLOURS[index % len(COLOURS)]
        figure.add_trace(go.Scatter(x=rows.position, y=rows.state_norm_max, mode="lines",
                                    line={"width": 0, "color": colour}, legendgroup=str(layer), showlegend=False, name=f"layer {layer} max",
                                    hovertemplate="max over heads %{y:.4g}<extra></extra>"))
        figure.add_trace(go.Scatter(x=rows.position, y=rows.state_norm_mean, mode="lines", line={"color": colour},
                                    fill="tonexty", legendgroup=str(layer), name=f"layer {layer}",
                                    hovertemplate="mean over heads %{y:.4g}<extra></extra>"))
    figure.update_layout(title="State norm ||S_t||_F per layer (line: mean over heads; band: up to the largest head)",
                         xaxis_title="position", yaxis_title="||S_t||_F")
    return figure


def head_state_norm_figure(long: pd.DataFrame) -> go.Figure:
    """Per-head ||S_t||_F against position for one layer. long: heads_long rows (position, head, state_norm)."""
    figure = px.line(long.assign(head=long["head"].astype(str)), x="position", y="state_norm", color="head",
                     markers=True)
    figure.update_layout(title="State norm per value head", xaxis_title="position", yaxis_title="||S_t||_F")
    return figure


def gate_box_figure(frame: pd.DataFrame, value: str, title: str) -> go.Figure:
    """Distribution of a per-token gate column (e.g. decay_mean, beta_mean) per layer, as box plots."""
    figure = px.box(frame.assign(layer=frame["layer"].astype(str)), x="layer", y=value, points=False)
    figure.update_layout(title=title, xaxis_title="layer", yaxis_title=value)
    return figure


def layer_head_heatmap(matrix: pd.DataFrame, title: str, colour: str, log10: bool = False) -> go.Figure:
    """A layer x head matrix as a heatmap (optionally log10 of the values: half-lives span decades)."""
    values = matrix.to_numpy(dtype=float)
    if log10:
        with np.errstate(divide="ignore"):
            values = np.log10(values)
        colour = f"log10 {colour}"
    figure = px.imshow(values, x=[str(h) for h in matrix.columns], y=[str(layer) for layer in matrix.index],
                       aspect="auto", color_continuous_scale="Viridis", labels={"x": "value head", "y": "layer",
                                                                                "color": colour})
    figure.update_layout(title=title)
    return figure


def half_life_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Layer x head half-life (tokens) of each head's geometric-mean decay, log10 colour."""
    return layer_head_heatmap(matrix, "Memory half-life per layer and head (tokens, log10)", "half-life", log10=True)


def recall_figure(curves: pd.DataFrame, metric: str = "rel_err_mean") -> go.Figure:
    """State recall against tokens since the key: one line per (layer, pair). curves: recall_curves rows."""
    frame = curves.assign(layer=curves["layer"].astype(str), pair=curves["pair"].astype(str))
    figure = px.line(frame, x="distance", y=metric, color="layer", line_dash="pair", markers=True,
                     hover_data=["position", "key_pos", "value_pos"])
    label = {"rel_err_mean": "||S^T k - v|| / ||v|| (mean over heads)", "rel_err_min": "best head's rel. error",
             "cos_mean": "cosine (mean over heads)", "cos_max": "best head's cosine"}.get(metric, metric)
    figure.update_layout(title="State recall of planted pairs", xaxis_title="tokens since the key", yaxis_title=label)
    return figure
