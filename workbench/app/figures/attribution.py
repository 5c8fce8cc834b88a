"""Figures of the Attribution page: contributions to the answer logit by layer and component group, and activation
patching recovery heatmaps (an intervention: their titles say so)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .common import COLOURS, empty_figure, heatmap

RANGE_ORDER = ["needle", "between", "question", "last"]  # probes/patching.py's ranges, in prompt order
GROUP_ORDER = ["embedding", "attention", "DeltaNet", "mixer (unsplit)", "shared expert", "routed experts",
               "dense MLP", "remainder"]


def contribution_bars(frame: pd.DataFrame, label, title: str) -> go.Figure:
    """contributions_by_layer rows (layer, group, value) -> bars per layer (categories, the embedding first), one
    colour per component group, stacked (relative: positive up, negative down); `label(layer)` names a layer."""
    if frame.empty:
        return empty_figure(title, "no logit_attribution rows (trace with --attribution)")
    layers = sorted(frame.layer.unique())
    names = ["embedding" if layer < 0 else label(layer) for layer in layers]
    figure = go.Figure()
    for index, group in enumerate([g for g in GROUP_ORDER if g in set(frame.group)]):
        rows = frame[frame.group == group].set_index("layer").value.reindex(layers)
        figure.add_trace(go.Bar(x=names, y=rows.to_numpy(), name=group, marker_color=COLOURS[index % len(COLOURS)],
                                hovertemplate=f"%{{x}}<br>{group} %{{y:.4g}} logits<extra></extra>"))
    figure.update_layout(title=title, barmode="relative", xaxis_title="layer",
                         yaxis_title="contribution to the logit (difference), logits")
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=names)
    return figure


def patching_heatmap(frame: pd.DataFrame, site: str, label) -> go.Figure:
    """patching_grid rows -> layer x range (heads: layer x head at the last position) heatmap of mean recovery,
    diverging around 0."""
    column = "head" if site == "head" else "range"
    title = f"INTERVENTION — activation patching, {site} sites: mean recovery of the clean answer"
    if frame.empty:
        return empty_figure(title, f"no {site} rows (python probes/patching.py)")
    if site != "head":  # ranges in prompt order, not alphabetical
        order = [r for r in RANGE_ORDER if r in set(frame["range"])] + sorted(set(frame["range"]) - set(RANGE_ORDER))
        frame = frame.assign(range=pd.Categorical(frame["range"], order, ordered=True))
    # recovery on a fixed [-1, 1] scale: noise of 1e-4 is not drawn as a signal (hover gives the value)
    return heatmap(frame, "layer", column, "recovery", title, "recovery", zmin=-1.0, zmax=1.0, colorscale="RdBu",
                   text=True, row_format=label, column_title="head (last position)" if site == "head" else
                   "position range")
