"""Attention recall over DuckDB (`attention`, `attention_gate`, `spans`, `retrieval`): per-head summaries, one
query row's top keys, and the default query row a researcher wants to see first. Needle (span) mass is defined in
`analysis.needle`."""

from __future__ import annotations

import pandas as pd

from .db import Scope, TraceDB


def span_names(db: TraceDB, scope: Scope) -> list[str]:
    """Span names of a run (of the scope's sequence when set), ordered by where they first start."""
    if not db.has("spans"):
        return []
    where, params = scope.where(layer=False, position=False)
    frame = db.frame(f"SELECT span FROM spans WHERE {where} GROUP BY span ORDER BY min(start_token), span", params)
    return frame.span.tolist()


def head_sink_entropy(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per (layer, head) over analysed query rows: sink_mass (mean weight on token 0), entropy (mean, nats),
    mean_distance (mean, tokens), rows."""
    where, params = scope.where()
    return db.frame(f"SELECT layer, head, avg(sink_mass) AS sink_mass, avg(entropy) AS entropy, "
                    f"avg(mean_distance) AS mean_distance, count(*) AS rows FROM attention WHERE {where} "
                    f"GROUP BY layer, head ORDER BY layer, head", params)


def query_positions(db: TraceDB, scope: Scope, seq_id: str) -> list[int]:
    """Analysed query positions of one sequence, ascending."""
    where, params = scope.where()
    return db.frame(f"SELECT DISTINCT position FROM attention WHERE {where} AND seq_id = ? ORDER BY position",
                    [*params, seq_id]).position.tolist()


def default_query(db: TraceDB, scope: Scope, seq_id: str) -> int | None:
    """The query row to show first: the first analysed token of the sequence's first `query: true` span (where the
    model starts writing the answer, so retrieval heads look at the needle), else the last analysed token; None when
    the sequence has no rows."""
    positions = query_positions(db, scope, seq_id)
    if not positions:
        return None
    if db.has("spans"):
        spans = db.frame("SELECT start_token, end_token FROM spans WHERE run_id = ? AND seq_id = ? AND query "
                         "ORDER BY start_token", [scope.run_id, seq_id])
        for row in spans.itertuples():
            inside = [p for p in positions if row.start_token <= p < row.end_token]
            if inside:
                return inside[0]
    return positions[-1]


def query_topk(db: TraceDB, scope: Scope, seq_id: str, position: int, layer: int) -> pd.DataFrame:
    """One query row's most-attended keys at one layer, per head: head, rank, key_position, weight (padding -1
    dropped)."""
    where, params = scope.where(layer=False, position=False)
    return db.frame(
        f"""SELECT head, rank - 1 AS rank, key_position, weight FROM (
              SELECT head, unnest(topk_positions) AS key_position, unnest(topk_weights) AS weight,
                     unnest(range(1, len(topk_positions) + 1)) AS rank
              FROM attention WHERE {where} AND seq_id = ? AND position = ? AND layer = ?)
            WHERE key_position >= 0 ORDER BY head, rank""", [*params, seq_id, int(position), int(layer)])


def head_gate_summary(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """`attention_gate` per (layer, head): gate_mean (mean over tokens of the head's mean output gate) and
    gate_low_fraction (mean fraction of its gate entries < 0.1)."""
    where, params = scope.where()
    return db.frame(
        f"""SELECT layer, head, avg(g) AS gate_mean, avg(low) AS gate_low_fraction FROM (
              SELECT layer, unnest(range(len(head_gate_mean))) AS head, unnest(head_gate_mean) AS g,
                     unnest(head_gate_low_fraction) AS low FROM attention_gate WHERE {where})
            GROUP BY layer, head ORDER BY layer, head""", params)


def retrieval_summary(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """`retrieval` per (layer, head) over sequences: score (mean), hits, steps (sums), sequences; best first."""
    where, params = scope.where(position=False)
    return db.frame(f"SELECT layer, head, avg(score) AS score, sum(hits)::BIGINT AS hits, sum(steps)::BIGINT AS steps, "
                    f"count(DISTINCT seq_id) AS sequences FROM retrieval WHERE {where} GROUP BY layer, head "
                    f"ORDER BY score DESC, layer, head", params)
