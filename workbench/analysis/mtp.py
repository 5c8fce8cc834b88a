"""Multi-token prediction over DuckDB: draft acceptance (table `mtp`, capture/mtp/) by prompt label, position
bucket and context length, and how the MTP layer's routing overlaps the trunk's.

Acceptance columns (each a mean over rows): accepted (the MTP's greedy draft of token t+2 equals the trunk's own
greedy token there, and the row is no tie), ties (the trunk's or the head's top two logits are exactly equal: the
greedy token is arbitrary, so the row is neither accepted nor rejected; 0 for files written before schema 1.3, which
did not record it), draft_correct (equals the actual token; the last row of a sequence has none), p_accepted (the
MTP's probability of the trunk's token).
"""

from __future__ import annotations

import pandas as pd

from ..mtp.acceptance import POSITION_BUCKETS
from .db import Scope, TraceDB

_MEANS = ("count(*) AS rows, avg((m.accepted AND NOT coalesce(m.tie, false))::INT) AS accepted, "
          "avg(coalesce(m.tie, false)::INT) AS ties, avg(m.draft_correct::INT) AS draft_correct, "
          "avg(m.p_accepted) AS p_accepted")


# A subquery (run_id, seq_id, label, num_tokens) per sequence of one run (its parameter: the run id).
_SEQUENCES = ("(SELECT run_id, seq_id, any_value(label) AS label, count(*) AS num_tokens FROM tokens "
              "WHERE run_id = ? GROUP BY run_id, seq_id)")


def acceptance_by_label(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per prompt label (null label shown as '(none)'): rows, accepted, draft_correct, p_accepted."""
    where, params = scope.where("m", layer=False)
    return db.frame(
        f"SELECT coalesce(s.label, '(none)') AS label, {_MEANS} FROM mtp m JOIN {_SEQUENCES} s "
        f"USING (run_id, seq_id) WHERE {where} GROUP BY 1 ORDER BY 1", [scope.run_id, *params])


def acceptance_by_position(db: TraceDB, scope: Scope, edges: tuple[int, ...] = POSITION_BUCKETS) -> pd.DataFrame:
    """Per position bucket [lo, hi) of the row's trunk position (buckets as mtp.acceptance.position_bucket)."""
    where, params = scope.where("m", layer=False)
    cases = " ".join(f"WHEN m.position < {hi} THEN {lo}" for lo, hi in zip(edges, edges[1:]))
    frame = db.frame(
        f"SELECT CASE {cases} ELSE {edges[-1]} END AS bucket_start, {_MEANS} FROM mtp m WHERE {where} "
        f"GROUP BY 1 ORDER BY 1", params)
    ends = dict(zip(edges, edges[1:]))
    frame["bucket"] = [f"{lo}-{ends[lo]}" if lo in ends else f">={lo}" for lo in frame["bucket_start"]]
    return frame


def acceptance_by_length(db: TraceDB, scope: Scope, edges: tuple[int, ...] = POSITION_BUCKETS) -> pd.DataFrame:
    """Per context-length bucket of the whole sequence (its token count)."""
    where, params = scope.where("m", layer=False)
    cases = " ".join(f"WHEN s.num_tokens < {hi} THEN {lo}" for lo, hi in zip(edges, edges[1:]))
    frame = db.frame(
        f"SELECT CASE {cases} ELSE {edges[-1]} END AS length_start, count(DISTINCT m.seq_id) AS sequences, "
        f"{_MEANS} FROM mtp m JOIN {_SEQUENCES} s USING (run_id, seq_id) WHERE {where} GROUP BY 1 ORDER BY 1",
        [scope.run_id, *params])
    ends = dict(zip(edges, edges[1:]))
    frame["length"] = [f"{lo}-{ends[lo]}" if lo in ends else f">={lo}" for lo in frame["length_start"]]
    return frame


def mtp_routing_overlap(db: TraceDB, scope: Scope, mtp_layer: int) -> pd.DataFrame:
    """Per trunk layer l: the mean Jaccard overlap between the expert ids the MTP layer (routing rows of layer
    `mtp_layer`) chose at row t and those trunk layer l chose at position t+1 (the token the MTP row embeds).
    Expert ids name different weights in different layers, so the overlap means something only where the MTP layer
    was initialised from a trunk layer (the shipped nano: its last full-attention layer) — chance is about
    k / (2E - k). Columns: layer, jaccard, rows."""
    where, params = scope.where("m", layer=False)
    return db.frame(
        f"SELECT r.layer, avg(len(list_intersect(m.topk_ids, r.topk_ids)) / "
        f"(2 * len(m.topk_ids) - len(list_intersect(m.topk_ids, r.topk_ids)))::DOUBLE) AS jaccard, count(*) AS rows "
        f"FROM routing m JOIN routing r ON r.run_id = m.run_id AND r.seq_id = m.seq_id "
        f"AND r.position = m.position + 1 AND r.layer <> m.layer "
        f"WHERE {where} AND m.layer = {int(mtp_layer)} GROUP BY r.layer ORDER BY r.layer", params)
