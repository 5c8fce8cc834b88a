"""Figures of the Overview, Token explorer, Long context and Compare runs pages."""

from __future__ import annotations

import html
from collections.abc import Collection

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from .common import COLOURS, empty_figure, heatmap, layer_label


def run_sizes_figure(sizes: pd.DataFrame) -> go.Figure:
    """run_sizes rows -> stacked bars of bytes per token per run, one segment per table."""
    if sizes.empty:
        return empty_figure("Bytes per token per run", "no data")
    figure = go.Figure()
    for index, (table, rows) in enumerate(sizes.groupby("table")):
        figure.add_trace(go.Bar(x=rows.run_id, y=rows.bytes_per_token, name=table,
                                marker_color=COLOURS[index % len(COLOURS)]))
    figure.update_layout(title="Bytes on disk per token, per run and table", xaxis_title="run",
                         yaxis_title="bytes / token", barmode="stack")
    figure.update_xaxes(type="category")
    return figure


EXPERT_PALETTE = qualitative.Alphabet + qualitative.Dark24 + qualitative.Light24  # 74 distinct colours
SPAN_OUTLINES = ["#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def expert_colours(ids) -> tuple[dict, list]:
    """Expert ids (categories, not quantities) -> ({id: category index}, a stepped colorscale giving category i its
    own colour from EXPERT_PALETTE; colours repeat only past 74 distinct experts)."""
    order = {int(e): i for i, e in enumerate(sorted({int(e) for e in ids}))}
    n = max(len(order), 1)
    scale = []
    for i in range(n):
        colour = EXPERT_PALETTE[i % len(EXPERT_PALETTE)]
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return order, scale


def span_cells(spans: pd.DataFrame, first: int, count: int, per_row: int) -> list[dict]:
    """The grid cells a sequence's spans cover, one rectangle per grid row they touch: span, row, col0, col1
    (inclusive), for tokens first .. first + count - 1 laid out `per_row` a row."""
    boxes = []
    for span in spans.itertuples():
        lo, hi = max(int(span.start_token), first), min(int(span.end_token), first + count)
        index = lo - first
        while index < hi - first:
            row, col0 = divmod(index, per_row)
            col1 = min(per_row - 1, col0 + (hi - first - 1 - index))
            boxes.append({"span": span.span, "row": row, "col0": col0, "col1": col1})
            index += col1 - col0 + 1
    return boxes


def token_strip_figure(frame: pd.DataFrame, metric: str, layer: int, per_row: int = 16,
                       spans: pd.DataFrame | None = None, mtp_layers: Collection[int] = ()) -> go.Figure:
    """A sequence's tokens laid out as text in rows of `per_row`, each cell coloured by the metric (token_metric
    rows: position, token, value); hover gives position, token and value. Cells without a value stay grey. Expert
    ids are categories: one colour per expert (a stepped scale), never a continuous ramp. The prompt's spans (span,
    start_token, end_token) are outlined cell by cell and named at their first cell."""
    title = f"{metric} per token at layer {layer_label(layer, mtp_layers)}"
    if frame.empty:
        return empty_figure(title, "no tokens")
    n = len(frame)
    rows = int(np.ceil(n / per_row))
    raw = frame.value.to_numpy(dtype=float)
    categorical = metric == "top-1 expert"
    trace = {"colorscale": "Viridis", "colorbar": {"title": {"text": metric}}}
    if categorical:
        order, scale = expert_colours(raw[~np.isnan(raw)])
        raw = np.array([np.nan if np.isnan(v) else order[int(v)] for v in raw])
        ids = sorted(order, key=order.get)
        trace = {"colorscale": scale, "zmin": -0.5, "zmax": max(len(order), 1) - 0.5,
                 "colorbar": {"title": {"text": "top-1 expert"}, "tickvals": list(range(len(ids))),
                              "ticktext": [str(e) for e in ids]}, "showscale": len(ids) <= 40}
    values = np.full(rows * per_row, np.nan)
    values[:n] = raw
    texts = [""] * (rows * per_row)
    hover = [""] * (rows * per_row)
    for i, row in enumerate(frame.itertuples()):
        texts[i] = html.escape(str(row.token))[:12]
        shown = "none" if pd.isna(row.value) else (f"{int(row.value)}" if categorical else f"{row.value:.4g}")
        hover[i] = f"position {row.position}<br>token {html.escape(str(row.token))}<br>{metric} {shown}"
    figure = go.Figure(go.Heatmap(
        z=values.reshape(rows, per_row), text=np.array(texts).reshape(rows, per_row), texttemplate="%{text}",
        customdata=np.array(hover).reshape(rows, per_row), hovertemplate="%{customdata}<extra></extra>",
        xgap=1, ygap=1, textfont={"size": 12}, **trace))  # plotly picks a text colour that contrasts with each cell
    start = int(frame.position.iloc[0])
    names = list(dict.fromkeys(spans.span)) if spans is not None else []
    for box in span_cells(spans, start, n, per_row) if spans is not None else []:
        colour = SPAN_OUTLINES[names.index(box["span"]) % len(SPAN_OUTLINES)]
        figure.add_shape(type="rect", x0=box["col0"] - 0.5, x1=box["col1"] + 0.5, y0=box["row"] - 0.5,
                         y1=box["row"] + 0.5, line={"color": colour, "width": 3}, name=box["span"])
    for name in names:  # the span's name above its first cell
        first = next((b for b in span_cells(spans[spans.span == name], start, n, per_row)), None)
        if first is not None:
            colour = SPAN_OUTLINES[names.index(name) % len(SPAN_OUTLINES)]
            figure.add_annotation(x=first["col0"] - 0.5, y=first["row"] - 0.5, text=name, showarrow=False,
                                  xanchor="left", yanchor="bottom", font={"size": 11, "color": colour},
                                  bgcolor="rgba(255,255,255,0.85)")
    if categorical:
        title += " (colour: expert id, one per expert" + ("; see hover" if len(order) > 40 else "") + ")"
    figure.update_layout(title=title + (" · spans outlined" if names else ""), xaxis_title="token within the row",
                         yaxis_title="row (first position)", height=max(300, 30 * rows + 140))
    figure.update_yaxes(autorange="reversed", tickmode="array", tickvals=list(range(rows)),
                        ticktext=[str(start + r * per_row) for r in range(rows)])
    return figure


def sweep_heatmap(grid: pd.DataFrame, title: str, value_title: str, zmax: float | None = None) -> go.Figure:
    """(context_length, needle_depth, value[, head]) rows -> one context length x needle depth heatmap. With a head
    column (the max head of needle mass), each cell prints its value and head, e.g. '0.97 h0'."""
    figure = heatmap(grid, "needle_depth", "context_length", "value", title, value_title, zmin=0.0, zmax=zmax,
                     text=True, row_title="needle depth", column_title="context length (tokens)",
                     row_format=lambda d: f"{d:.0%}")
    if "head" in grid and grid["head"].notna().any() and figure.data:
        heads = grid.pivot_table(index="needle_depth", columns="context_length", values="head", aggfunc="first")
        values = np.asarray(figure.data[0].z, dtype=float)
        text = [[("" if np.isnan(v) else f"{v:.2f} h{int(h)}") for v, h in zip(row, head_row)]
                for row, head_row in zip(values, heads.sort_index().to_numpy(dtype=float))]
        figure.data[0].update(text=text, texttemplate="%{text}")
    figure.update_yaxes(autorange=True)
    return figure


def sweep_heatmaps(grid: pd.DataFrame, value_title: str, zmax: float | None = None) -> list[go.Figure]:
    """sweep_grid rows -> one context length x needle depth heatmap per layer (depth rows, length columns)."""
    figures = []
    for layer, rows in grid.groupby("layer", sort=True):
        kind = rows.layer_kind.iloc[0]
        figures.append(sweep_heatmap(rows, f"{layer_label(layer)} ({kind}): {value_title}", value_title, zmax))
    return figures


def load_difference_heatmap(load_a: pd.DataFrame, load_b: pd.DataFrame, mtp_layers: Collection[int] = ()
                            ) -> go.Figure:
    """Two expert_load frames -> layer x expert heatmap of fraction(B) - fraction(A) (red: B uses it more)."""
    merged = load_a.merge(load_b, on=["layer", "expert"], how="outer", suffixes=("_a", "_b")).fillna(0)
    merged["difference"] = merged.fraction_b - merged.fraction_a
    return heatmap(merged, "layer", "expert", "difference", "Expert load difference (run B - run A)",
                   "fraction B - A", colorscale="RdBu_r", zmid=0.0, mtp_layers=mtp_layers)


def agreement_figure(agreement: pd.DataFrame, mtp_layers: Collection[int] = ()) -> go.Figure:
    """run_agreement rows -> per layer: top-1 agreement and mean Jaccard of the top-k sets."""
    if agreement.empty:
        return empty_figure("Routing agreement", "no tokens in common")
    x = [layer_label(layer, mtp_layers) for layer in agreement.layer]
    figure = go.Figure([go.Bar(x=x, y=agreement.top1_agreement, name="top-1 agreement", marker_color=COLOURS[0]),
                        go.Bar(x=x, y=agreement.jaccard, name="Jaccard of top-k", marker_color=COLOURS[1])])
    figure.update_layout(title="Routing agreement on the same tokens", xaxis_title="layer", yaxis_title="fraction",
                         barmode="group", yaxis_range=[0, 1.05])
    figure.update_xaxes(type="category")
    return figure


def state_difference_figure(difference: pd.DataFrame) -> go.Figure:
    """state_norm_difference rows -> per layer mean |difference| of the mean state norm between two runs."""
    if difference.empty:
        return empty_figure("State-norm difference", "no tokens in common")
    x = [layer_label(layer) for layer in difference.layer]
    figure = go.Figure([go.Bar(x=x, y=difference.mean_abs_diff, name="mean |A - B|", marker_color=COLOURS[0]),
                        go.Bar(x=x, y=difference.max_abs_diff, name="max |A - B|", marker_color=COLOURS[1])])
    figure.update_layout(title="State norm difference between runs (mean over heads, per token)",
                         xaxis_title="layer", yaxis_title="||S_t||_F difference", barmode="group")
    figure.update_yaxes(exponentformat="power")  # not SI prefixes: '80µ' reads as a unit
    figure.update_xaxes(type="category")
    return figure
