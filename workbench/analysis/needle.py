"""Needle mass: how much of an attention head's weight lands on a span (the needle). Defined here once; every page,
probe and README sentence that quotes it calls these functions.

Definition. For one full-attention layer and query head, and every analysed query row t at or after the span's end
(t >= end_token, so every span token is visible to the row: a row inside or before the span could not put its
weight there), take the attention weight the head puts on the span's key tokens, summed over them
(`attention.span_mass[span]`, 0..1). The head's needle mass is the MEAN OVER THOSE ROWS (rows of every sequence in
scope that has the span, pooled). Per layer, the summary is the MAX HEAD: the head with the highest needle mass
(retrieval is carried by few heads, so a mean over heads would hide it), reported with its index.

Which rows are analysed is the capture's choice, and a number is quoted with it: a trace analyses every
--attention-stride-th row plus the prompt's `query: true` span; the needle sweep (probes/needle_sweep.py) analyses
only the rows that predict the answer (and averages per prompt, then over a cell's prompts).

    head_needle_mass  the definition on arrays (what the probe computes from a capture)
    needle_mass       the same over the `attention` table in DuckDB: layer, head, mass, rows
    max_head          per layer, the head with the highest mass
    row_max_head      one sequence, per analysed row after the span: the max head's weight (the token explorer)
    sweep_head_mass   `needle_sweep.needle_mass` per (layer, head), mean over the sweep's cells
    sweep_max_head    `needle_sweep.needle_mass` per (layer, cell), the max head
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .db import Scope, TraceDB

ROWS = "mean over query rows after the span"
TITLE = f"needle mass ({ROWS})"
MAX_HEAD_TITLE = f"needle mass, max head ({ROWS})"
SWEEP_ROWS = "mean over the answer's query rows"
SWEEP_MAX_HEAD_TITLE = f"needle mass, max head ({SWEEP_ROWS})"


def head_needle_mass(span_mass: np.ndarray, positions: np.ndarray, span_end: int) -> tuple[np.ndarray, int]:
    """The definition on one sequence's arrays.

    span_mass: [Q, H] attention weight on the span of each analysed query row (summed over the span's keys), 0..1.
    positions: [Q] token position of each analysed row.
    span_end:  the span's end token (exclusive); rows at or after it count.
    Returns ([H] needle mass per head, NaN when no row counts; the number of rows that count)."""
    span_mass, positions = np.asarray(span_mass, dtype=np.float64), np.asarray(positions)
    after = positions >= span_end  # [Q]
    rows = int(after.sum())
    if rows == 0:
        return np.full(span_mass.shape[1], np.nan), 0
    return span_mass[after].mean(axis=0), rows


def needle_mass(db: TraceDB, scope: Scope, span: str = "needle") -> pd.DataFrame:
    """Needle mass per (layer, head) over the `attention` table: the rows at or after the span's end_token of every
    sequence in scope that has `span`, pooled. Returns layer, head, mass (0..1), rows; empty without such rows."""
    where, params = scope.where("a")
    return db.frame(
        f"""SELECT a.layer, a.head, avg(a.span_mass[?]) AS mass, count(*) AS rows
            FROM attention a JOIN spans s ON s.run_id = a.run_id AND s.seq_id = a.seq_id AND s.span = ?
            WHERE {where} AND a.position >= s.end_token AND a.span_mass[?] IS NOT NULL
            GROUP BY a.layer, a.head ORDER BY a.layer, a.head""", [span, span, *params, span])


def max_head(per_head: pd.DataFrame, value: str = "mass") -> pd.DataFrame:
    """Per layer (and any other key column besides head), the row of the head with the highest `value`; ties go to
    the lowest head. per_head: frames with layer, head and `value` columns. Same columns out, one row per key."""
    if per_head.empty:
        return per_head.copy()
    keys = [c for c in per_head.columns if c in ("layer", "layer_kind", "context_length", "needle_depth")]
    ranked = per_head.sort_values([*keys, value, "head"], ascending=[*[True] * len(keys), False, True])
    return ranked.groupby(keys, sort=True).head(1).sort_values(keys).reset_index(drop=True)


def row_max_head(db: TraceDB, run_id: str, seq_id: str, layer: int, span: str = "needle") -> pd.DataFrame:
    """One sequence at one layer, per analysed query row at or after the span's end: position, head (the max head
    at that row), value (its weight on the span). Rows before the span's end are left out (see the definition)."""
    if not (db.has("attention") and db.has("spans")):
        return pd.DataFrame(columns=["position", "head", "value"])
    return db.frame(
        """SELECT a.position, arg_max(a.head, a.span_mass[?]) AS head, max(a.span_mass[?]) AS value
            FROM attention a JOIN spans s ON s.run_id = a.run_id AND s.seq_id = a.seq_id AND s.span = ?
            WHERE a.run_id = ? AND a.seq_id = ? AND a.layer = ? AND a.position >= s.end_token
              AND a.span_mass[?] IS NOT NULL
            GROUP BY a.position ORDER BY a.position""", [span, span, span, run_id, seq_id, int(layer), span])


def _sweep_where(scope: Scope) -> tuple[str, list]:
    where, params = scope.where(position=False)
    return f"{where} AND needle_mass IS NOT NULL", params


def sweep_head_mass(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """`needle_sweep.needle_mass` per (layer, head), mean over the sweep's cells (context length x needle depth; each
    cell holds the mean over its prompts of the needle mass at the answer's query rows). Returns layer, head, mass,
    cells."""
    where, params = _sweep_where(scope)
    return db.frame(f"SELECT layer, head, avg(needle_mass) AS mass, count(*) AS cells FROM needle_sweep "
                    f"WHERE {where} GROUP BY layer, head ORDER BY layer, head", params)


def sweep_max_head(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """`needle_sweep.needle_mass` per (layer, context_length, needle_depth): the max head. Returns layer, layer_kind,
    context_length, needle_depth, head, value."""
    where, params = _sweep_where(scope)
    cells = db.frame(f"SELECT layer, layer_kind, context_length, needle_depth, head, needle_mass AS value "
                     f"FROM needle_sweep WHERE {where}", params)
    return max_head(cells, "value")
