"""Routing & sparsity figures: plain functions DataFrame -> plotly Figure."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .common import COLOURS, empty_figure, heatmap, layer_label, mark_never_chosen


def expert_load_heatmap(load: pd.DataFrame, mtp_layers: Collection[int] = ()) -> go.Figure:
    """expert_load rows (zeros included) -> layer x expert heatmap of the fraction of top-k slots (uniform = 1/E);
    experts never chosen in a layer are grey cells, counted in the title."""
    experts = load.expert.nunique() if not load.empty else 0
    title = f"Expert load per layer (fraction of top-k slots; uniform = 1/{experts})"
    figure = heatmap(load, "layer", "expert", "fraction", title, "load fraction", zmin=0.0, mtp_layers=mtp_layers)
    if load.empty:
        return figure
    counts = load.pivot_table(index="layer", columns="expert", values="count", aggfunc="sum").sort_index()
    never = mark_never_chosen(figure, counts.to_numpy())
    figure.update_layout(title=f"{title}; grey: never chosen ({never} of {counts.size} layer x expert cells)")
    return figure


def balance_figure(balance: pd.DataFrame, mtp_layers: Collection[int] = ()) -> go.Figure:
    """load_balance rows -> per layer: coefficient of variation and max/mean (left axis), normalised entropy and
    the busiest 1 % share (right axis, 0..1)."""
    if balance.empty:
        return empty_figure("Load balance per layer", "no data")
    x = [layer_label(layer, mtp_layers) for layer in balance.layer]
    figure = go.Figure()
    figure.add_trace(go.Bar(x=x, y=balance.cv, name="CV of load", marker_color=COLOURS[0]))
    figure.add_trace(go.Bar(x=x, y=balance.max_over_mean, name="max / mean", marker_color=COLOURS[1]))
    figure.add_trace(go.Scatter(x=x, y=balance.entropy_norm, name="entropy / ln E", mode="lines+markers",
                                yaxis="y2", marker_color=COLOURS[2]))
    figure.add_trace(go.Scatter(x=x, y=balance.top1pct_share, name="share of busiest 1%", mode="lines+markers",
                                yaxis="y2", marker_color=COLOURS[3]))
    figure.update_layout(title="Load balance per layer (0 CV, max/mean 1, entropy 1 = perfectly even)",
                         xaxis_title="layer", yaxis_title="CV, max/mean", barmode="group",
                         yaxis2={"title": "fraction", "overlaying": "y", "side": "right", "range": [0, 1.05]},
                         legend={"orientation": "h", "y": -0.25})
    figure.update_xaxes(type="category")
    return figure


def label_divergence_heatmap(divergence: pd.DataFrame, mtp_layers: Collection[int] = ()) -> go.Figure:
    """label_divergence rows -> (label pair) x layer heatmap of the Jensen-Shannon divergence in bits."""
    frame = divergence.assign(pair=divergence.label_a + " vs " + divergence.label_b)
    return heatmap(frame, "pair", "layer", "js_bits", "Expert load divergence between prompt labels (JS, bits)",
                   "JS (bits)", zmin=0.0, row_title="labels", column_title="layer", mtp_layers=mtp_layers)


def label_load_figure(by_label: pd.DataFrame, layer: int, top: int = 32, mtp_layers: Collection[int] = ()
                      ) -> go.Figure:
    """load_by_label rows of one layer -> grouped bars of each label's load on the `top` busiest experts."""
    rows = by_label[by_label.layer == layer]
    if rows.empty:
        return empty_figure("Load by label", "no data")
    busiest = rows.groupby("expert")["count"].sum().nlargest(top).index
    figure = go.Figure()
    for index, (label, group) in enumerate(rows[rows.expert.isin(busiest)].groupby("label")):
        group = group.set_index("expert").loc[busiest]
        figure.add_trace(go.Bar(x=[str(e) for e in busiest], y=group.fraction, name=str(label),
                                marker_color=COLOURS[index % len(COLOURS)]))
    figure.update_yaxes(rangemode="tozero")
    figure.update_layout(title=f"Load by prompt label, layer {layer_label(layer, mtp_layers)} ({len(busiest)} busiest "
                               "experts)",
                         xaxis_title="expert", yaxis_title="fraction of the label's slots", barmode="group")
    figure.update_xaxes(type="category")
    return figure


def drift_heatmap(divergence: pd.DataFrame, mtp_layers: Collection[int] = ()) -> go.Figure:
    """drift_divergence rows -> layer x position-bucket heatmap of each bucket's JS divergence from the layer's
    overall load."""
    return heatmap(divergence, "layer", "bucket", "js_bits", "Load drift over positions (JS of the bucket's load "
                   "from the layer's, bits)", "JS (bits)", zmin=0.0, column_title="position bucket (first token)",
                   mtp_layers=mtp_layers)


def coactivation_heatmap(counts: np.ndarray, joint: np.ndarray, order: np.ndarray, layer: int,
                         mtp_layers: Collection[int] = ()) -> go.Figure:
    """P(j in top-k | i in top-k) for the experts in `order` (clustered_order), rows i, columns j."""
    if len(order) == 0:
        return empty_figure("Co-activation", "no data")
    conditional = joint[np.ix_(order, order)] / np.maximum(counts[order], 1)[:, None]
    labels = [str(e) for e in order]
    figure = go.Figure(go.Heatmap(z=conditional, x=labels, y=labels, colorscale="Viridis", zmin=0,
                                  colorbar={"title": {"text": "P(j | i)"}},
                                  hovertemplate="i %{y} -> j %{x}<br>P(j | i) %{z:.3f}<extra></extra>"))
    figure.update_layout(title=f"Co-activation P(j in top-k | i in top-k), layer {layer_label(layer, mtp_layers)} "
                               f"({len(order)} experts, clustered)", xaxis_title="expert j", yaxis_title="expert i")
    figure.update_xaxes(type="category", showticklabels=len(order) <= 64)
    figure.update_yaxes(type="category", showticklabels=len(order) <= 64, autorange="reversed")
    return figure


def expert_share_figure(experts: pd.DataFrame, token: str, layer: int, top: int = 20,
                        mtp_layers: Collection[int] = ()) -> go.Figure:
    """token_experts rows -> bars of the share of a token's top-k slots each expert takes."""
    if experts.empty:
        return empty_figure("Experts of a token", "no data")
    rows = experts.head(top)
    figure = go.Figure(go.Bar(x=[str(e) for e in rows.expert], y=rows.share, marker_color=COLOURS[0],
                              customdata=np.stack([rows["count"], rows.mean_weight], axis=1),
                              hovertemplate="expert %{x}<br>share %{y:.3f}<br>slots %{customdata[0]}<br>"
                                            "mean weight %{customdata[1]:.3f}<extra></extra>"))
    figure.update_layout(title=f"Where token {token!r} goes at layer {layer_label(layer, mtp_layers)}",
                         xaxis_title="expert", yaxis_title="share of its top-k slots", yaxis_range=[0, 1.05])
    figure.update_xaxes(type="category")
    return figure


def histogram_figure(histogram: pd.DataFrame, title: str, value_title: str, mtp_layers: Collection[int] = ()
                     ) -> go.Figure:
    """metric_histogram rows -> one line per layer of the fraction of tokens per bin."""
    if histogram.empty:
        return empty_figure(title, "no data")
    figure = go.Figure()
    for index, (layer, rows) in enumerate(histogram.groupby("layer")):
        figure.add_trace(go.Scatter(x=(rows.lo + rows.hi) / 2, y=rows["count"] / rows["count"].sum(),
                                    mode="lines", name=layer_label(layer, mtp_layers),
                                    line={"color": COLOURS[index % len(COLOURS)], "shape": "hvh"}))
    figure.update_layout(title=title, xaxis_title=value_title, yaxis_title="fraction of the layer's tokens")
    figure.update_yaxes(rangemode="tozero")
    return figure
