"""Plain functions DataFrame -> plotly Figure for the Attention recall page, testable without Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from workbench.analysis.attention import layer_head_matrix


def layer_head_heatmap(frame: pd.DataFrame, value: str, title: str, zmax: float | None = 1.0) -> go.Figure:
    """Layer x head heatmap of `value` from long (layer, head, value) rows; colour range [0, zmax]."""
    matrix = layer_head_matrix(frame, value)
    figure = px.imshow(
        matrix.to_numpy(),
        x=[str(h) for h in matrix.columns],
        y=[str(layer) for layer in matrix.index],
        zmin=0.0,
        zmax=zmax,
        aspect="auto",
        color_continuous_scale="Viridis",
        labels={"x": "head", "y": "layer", "color": value},
        text_auto=".2f",
    )
    figure.update_layout(title=title)
    figure.update_xaxes(type="category")
    figure.update_yaxes(type="category")  # only the layers present, not a numeric 1..9 axis
    return figure


def span_mass_heatmap(mass: pd.DataFrame, span: str) -> go.Figure:
    """head_span_mass rows -> layer x head heatmap of the mean attention mass on `span`."""
    return layer_head_heatmap(mass, "mass", f"Attention mass on '{span}' (mean over queries after it)")


def retrieval_heatmap(scores: pd.DataFrame) -> go.Figure:
    """`retrieval` rows (layer, head, score) averaged over sequences -> layer x head heatmap."""
    mean = scores.groupby(["layer", "head"], as_index=False)["score"].mean()
    return layer_head_heatmap(mean, "score", "Retrieval score (fraction of copy steps the head copied)")


def gate_heatmap(summary: pd.DataFrame, value: str = "gate_mean") -> go.Figure:
    """head_gate_summary rows -> layer x head heatmap of the mean output gate (or its low fraction)."""
    title = {"gate_mean": "Mean output gate sigmoid(gate)", "gate_low_fraction": "Fraction of gate entries < 0.1"}
    return layer_head_heatmap(summary, value, title.get(value, value))


def query_attention_figure(topk: pd.DataFrame, tokens: pd.DataFrame, spans: pd.DataFrame, position: int) -> go.Figure:
    """One query's top-k attended keys per head: x = key position, y = weight on a log axis, colour = head;
    spans shaded. topk: query_topk rows; tokens: position, token; spans: span, start_token, end_token."""
    frame = topk.copy()
    frame["token"] = frame["key_position"].map(dict(zip(tokens["position"], tokens["token"])))
    frame["head"] = frame["head"].astype(str)
    figure = px.scatter(frame, x="key_position", y="weight", color="head", hover_data=["token", "rank"], log_y=True)
    figure.update_traces(marker={"size": 9})
    for row in spans.itertuples():
        if row.end_token > row.start_token:
            figure.add_vrect(x0=row.start_token - 0.5, x1=row.end_token - 0.5, fillcolor="orange", opacity=0.2,
                             line_width=0, annotation_text=row.span, annotation_position="top left")
    figure.add_vline(x=position, line_dash="dot", annotation_text="query")
    figure.update_layout(title=f"Top-k attention of the token at position {position}", xaxis_title="key position",
                         yaxis_title="attention weight (log)")
    return figure
