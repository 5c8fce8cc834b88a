"""Figures of the Generation page: the sequence's tokens coloured by a measure, routing drift from the prompt into
the generated tokens, and MTP draft acceptance per draft index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .common import COLOURS, empty_figure, layer_label

TOKENS_PER_ROW = 16
LOGPROB = "log-probability"  # the generation's own measure; the others are the token explorer's (analysis/tokens.py)
CATEGORICAL = {"top-1 expert"}  # expert ids name experts: categories, never a continuous scale


def _shown(token: str) -> str:
    return token.replace("\n", "⏎").replace(" ", "·") if token else "∅"


def token_grid(frame: pd.DataFrame, measure: str, title: str, per_row: int = TOKENS_PER_ROW) -> go.Figure:
    """Rows (position, token, phase, value) of one sequence -> a grid of `per_row` tokens per line, each cell
    coloured by the value: categories (top-1 expert ids) in discrete colours, numbers on a continuous scale. The
    first generated token (phase 'decode') is pointed at; cells without a value stay grey."""
    if frame.empty:
        return empty_figure(title, "no tokens")
    rows = (len(frame) + per_row - 1) // per_row
    shape = (rows, per_row)
    text = np.full(shape, "", dtype=object)
    hover = np.full(shape, "", dtype=object)
    z = np.full(shape, np.nan)
    categorical = measure in CATEGORICAL
    categories = sorted({int(v) for v in frame.value.dropna()}) if categorical else []
    for i, row in enumerate(frame.itertuples()):
        r, c = divmod(i, per_row)
        text[r, c] = _shown(row.token)
        value = row.value
        shown_value = "none" if pd.isna(value) else (f"expert {int(value)}" if categorical else f"{value:.4g}")
        hover[r, c] = f"position {row.position} ({row.phase})<br>{row.token!r}<br>{shown_value}"
        if not pd.isna(value):
            z[r, c] = categories.index(int(value)) if categorical else value
    if categorical and categories:
        n = len(categories)
        colours = [COLOURS[i % len(COLOURS)] for i in range(n)]
        scale = [[edge / n, colours[min(int(edge), n - 1)]] for edge in np.repeat(np.arange(n + 1), 2)[1:-1]]
        trace = go.Heatmap(z=z, zmin=-0.5, zmax=n - 0.5, colorscale=scale, text=text, texttemplate="%{text}",
                           customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                           colorbar={"title": {"text": "expert"}, "tickvals": list(range(n)),
                                     "ticktext": [str(c) for c in categories]})
    else:
        trace = go.Heatmap(z=z, colorscale="Viridis", text=text, texttemplate="%{text}", customdata=hover,
                           hovertemplate="%{customdata}<extra></extra>",
                           colorbar={"title": {"text": measure}})
    figure = go.Figure(trace)
    decode = frame.reset_index(drop=True).index[frame.phase.to_numpy() == "decode"]
    if len(decode):
        first = int(decode[0])
        r, c = divmod(first, per_row)
        figure.add_annotation(x=c, y=r, text="generation starts", showarrow=True, arrowhead=2, ay=-25)
    # a fixed height per line of tokens (plus the title's and the arrow's room), so a short sequence stays legible
    figure.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, height=170 + 48 * max(rows, 2),
                         margin={"t": 90}, plot_bgcolor="#eeeeee")
    figure.update_yaxes(autorange="reversed")
    return figure


def drift_bars(frame: pd.DataFrame) -> go.Figure:
    """routing_drift rows -> one bar per MoE layer: Jensen-Shannon divergence (bits) of the expert load of the
    generated tokens from the prompt's, axis from 0 to 1."""
    title = "Routing drift from prompt to generation: JS divergence of the expert load per MoE layer"
    if frame.empty:
        return empty_figure(title, "no routing rows in both phases")
    figure = go.Figure(go.Bar(x=[layer_label(x) for x in frame.layer], y=frame.js_bits, marker_color=COLOURS[0],
                              customdata=np.stack([frame.prefill_selections, frame.decode_selections], axis=-1),
                              hovertemplate="%{x}<br>JS %{y:.3f} bits<br>%{customdata[0]} prompt / %{customdata[1]} "
                                            "generated selections<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="MoE layer", yaxis_title="JS divergence (bits, 0 = same load)",
                         yaxis_range=[0, 1])
    figure.update_xaxes(type="category")
    return figure


def draft_bars(frame: pd.DataFrame) -> go.Figure:
    """draft_acceptance rows -> share of drafts kept per draft index within a round, axis from 0 to 1."""
    title = "MTP drafts kept, by draft index within a round"
    if frame.empty:
        return empty_figure(title, "no drafts (generate with --speculative mtp)")
    figure = go.Figure(go.Bar(x=[f"draft {int(d) + 1}" for d in frame.draft], y=frame.accepted,
                              marker_color=COLOURS[2], customdata=frame.drafts,
                              hovertemplate="%{x}<br>kept %{y:.1%}<br>%{customdata} drafts<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="draft index", yaxis_title="share of drafts kept",
                         yaxis_range=[0, 1], yaxis_tickformat=".0%")
    figure.update_xaxes(type="category")
    return figure
