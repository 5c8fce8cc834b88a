"""Plain functions DataFrame -> plotly Figure: every figure the dashboard shows, testable without Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from workbench.analysis.routing import load_matrix


def expert_load_heatmap(load: pd.DataFrame) -> go.Figure:
    """Layer x expert heatmap of the fraction of routing slots each expert takes (uniform = 1/E)."""
    matrix = load_matrix(load)
    figure = px.imshow(
        matrix.to_numpy(),
        x=matrix.columns,
        y=[str(layer) for layer in matrix.index],
        aspect="auto",
        color_continuous_scale="Viridis",
        labels={"x": "expert", "y": "layer", "color": "load fraction"},
    )
    figure.update_layout(title="Expert load per layer (fraction of top-k slots)")
    figure.update_yaxes(type="category")  # MoE layers only, even when dense layers sit between them
    return figure


def token_topk_figure(topk: pd.DataFrame, tokens: pd.DataFrame) -> go.Figure:
    """Each token's top-k experts at one layer: x = position (token text on hover), y = expert, colour = weight."""
    merged = topk.copy()
    merged["token"] = merged["position"].map(dict(zip(tokens["position"], tokens["token"])))
    figure = px.scatter(
        merged,
        x="position",
        y="expert",
        color="weight",
        hover_data=["token", "rank", "weight"],
        color_continuous_scale="Plasma",
    )
    figure.update_traces(marker={"symbol": "square", "size": 9})
    figure.update_layout(title="Top-k experts per token", xaxis_title="position", yaxis_title="expert")
    return figure
