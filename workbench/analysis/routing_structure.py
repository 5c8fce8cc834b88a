"""Structure in routing decisions over DuckDB: vocabulary specialisation, expert co-activation within a layer,
layer-to-layer transitions, and agreement between two runs on the same tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.sparse import csr_matrix

from .db import Scope, TraceDB


def _one_layer(scope: Scope, layer: int) -> Scope:
    return Scope(scope.run_id, (int(layer),), scope.label, scope.seq_id, scope.positions)


def vocab_specialisation(db: TraceDB, scope: Scope, layer: int, min_count: int = 1) -> pd.DataFrame:
    """For each token id seen at least `min_count` times at `layer`: token_id, token, count, top_expert (its most
    frequent top-1 expert), top_share (fraction of its occurrences routed first to that expert; 1 = always the
    same expert), experts (distinct top-1 experts). Sorted by count, then top_share, descending."""
    where, params = _one_layer(scope, layer).where("r")
    return db.frame(
        f"""WITH firsts AS (
              SELECT t.token_id, any_value(t.token) AS token, r.topk_ids[1] AS expert, count(*) AS n
              FROM routing r JOIN tokens t ON t.run_id = r.run_id AND t.seq_id = r.seq_id AND t.position = r.position
              WHERE {where} GROUP BY t.token_id, expert)
            SELECT token_id, any_value(token) AS token, sum(n)::BIGINT AS count, arg_max(expert, n) AS top_expert,
                   max(n) / sum(n) AS top_share, count(*) AS experts
            FROM firsts GROUP BY token_id HAVING sum(n) >= ? ORDER BY count DESC, top_share DESC, token_id""",
        [*params, int(min_count)])


def token_experts(db: TraceDB, scope: Scope, layer: int, token_id: int) -> pd.DataFrame:
    """The experts a token id goes to at `layer`, over all its top-k slots: expert, count, share (sums to 1),
    mean_weight (its mean routing weight when chosen)."""
    where, params = _one_layer(scope, layer).where("r")
    return db.frame(
        f"""SELECT expert, count(*) AS count, count(*) / sum(count(*)) OVER () AS share, avg(weight) AS mean_weight
            FROM (SELECT unnest(r.topk_ids) AS expert, unnest(r.topk_weights) AS weight FROM routing r
                  JOIN tokens t ON t.run_id = r.run_id AND t.seq_id = r.seq_id AND t.position = r.position
                  WHERE {where} AND t.token_id = ?)
            GROUP BY expert ORDER BY count DESC, expert""", [*params, int(token_id)])


def _topk_matrix(db: TraceDB, scope: Scope, layer: int) -> np.ndarray:
    """[rows, k] expert ids of one layer (a few MB: one layer's rows only)."""
    where, params = _one_layer(scope, layer).where()
    table = db.arrow(f"SELECT topk_ids FROM routing WHERE {where}", params)
    if table.num_rows == 0:
        return np.zeros((0, 0), dtype=np.int64)
    flat = pc.list_flatten(table["topk_ids"]).to_numpy().astype(np.int64)
    return flat.reshape(table.num_rows, -1)


def coactivation(db: TraceDB, scope: Scope, layer: int, num_experts: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Within one layer: counts[i] = rows with expert i in the top-k, and joint[i, j] = rows with both i and j
    (j != i; diagonal 0). P(j in top-k | i in top-k) = joint[i, j] / counts[i]. Returns (counts [E], joint [E, E])."""
    ids = _topk_matrix(db, scope, layer)
    experts = int(num_experts or (ids.max() + 1 if ids.size else 0))
    rows, k = ids.shape
    onehot = csr_matrix((np.ones(rows * k), (np.repeat(np.arange(rows), k), ids.reshape(-1))), shape=(rows, experts))
    joint = (onehot.T @ onehot).toarray()
    counts = np.diag(joint).copy()
    np.fill_diagonal(joint, 0)
    return counts.astype(np.int64), joint.astype(np.int64)


def coactivation_pairs(counts: np.ndarray, joint: np.ndarray, top: int = 20, min_count: int = 1) -> pd.DataFrame:
    """The `top` ordered pairs (i, j) with the largest P(j | i) among experts i chosen at least `min_count` times:
    expert_i, expert_j, joint, count_i, p_j_given_i; ties broken by joint count, then ids."""
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = np.where(counts[:, None] >= max(min_count, 1), joint / counts[:, None], np.nan)
    i, j = np.nonzero(joint)
    frame = pd.DataFrame({"expert_i": i, "expert_j": j, "joint": joint[i, j], "count_i": counts[i],
                          "p_j_given_i": conditional[i, j]}).dropna()
    return frame.sort_values(["p_j_given_i", "joint", "expert_i", "expert_j"],
                             ascending=[False, False, True, True]).head(top).reset_index(drop=True)


def clustered_order(counts: np.ndarray, joint: np.ndarray, max_experts: int = 512) -> np.ndarray:
    """Expert ids for a clustered co-activation heatmap: the `max_experts` most used experts (ties by id), ordered
    by average-linkage clustering of their rows of P(j | i) (similar co-activation next to each other)."""
    used = np.flatnonzero(counts)
    keep = used[np.argsort(-counts[used], kind="stable")][:max_experts]
    if len(keep) < 3:
        return np.sort(keep)
    conditional = joint[np.ix_(keep, keep)] / counts[keep][:, None]
    return keep[leaves_list(linkage(conditional, method="average", metric="euclidean"))]


def layer_transitions(db: TraceDB, scope: Scope, layer_from: int, layer_to: int, top: int = 20) -> pd.DataFrame:
    """Top-1 expert at `layer_from` -> top-1 expert at `layer_to` for the same tokens: the `top` most frequent
    pairs with expert_from, expert_to, count, p_to_given_from (count / tokens whose top-1 at layer_from is
    expert_from)."""
    where_a, params_a = _one_layer(scope, layer_from).where("a")
    where_b, params_b = _one_layer(scope, layer_to).where("b")
    return db.frame(
        f"""SELECT expert_from, expert_to, count, count / sum(count) OVER (PARTITION BY expert_from) AS p_to_given_from
            FROM (SELECT a.topk_ids[1] AS expert_from, b.topk_ids[1] AS expert_to, count(*) AS count
                  FROM routing a JOIN routing b ON a.run_id = b.run_id AND a.seq_id = b.seq_id
                       AND a.position = b.position
                  WHERE {where_a} AND {where_b} GROUP BY ALL)
            ORDER BY count DESC, expert_from, expert_to LIMIT {int(top)}""", [*params_a, *params_b])


def run_agreement(db: TraceDB, scope_a: Scope, run_b: str) -> pd.DataFrame:
    """Routing of two runs on the same tokens (same seq_id, position and token id), per layer: layer, tokens,
    top1_agreement (fraction with the same first expert), jaccard (mean |A & B| / |A | B| of the top-k sets).
    scope_a's filters apply to both runs."""
    scope_b = Scope(run_b, scope_a.layers, None, scope_a.seq_id, scope_a.positions)
    where_a, params_a = scope_a.where("a")
    where_b, params_b = scope_b.where("b")
    return db.frame(
        f"""SELECT a.layer, count(*) AS tokens, avg(CAST(a.topk_ids[1] = b.topk_ids[1] AS DOUBLE)) AS top1_agreement,
                   avg(len(list_intersect(a.topk_ids, b.topk_ids))
                       / len(list_distinct(list_concat(a.topk_ids, b.topk_ids)))) AS jaccard
            FROM routing a
            JOIN routing b ON a.seq_id = b.seq_id AND a.position = b.position AND a.layer = b.layer
            JOIN tokens ta ON ta.run_id = a.run_id AND ta.seq_id = a.seq_id AND ta.position = a.position
            JOIN tokens tb ON tb.run_id = b.run_id AND tb.seq_id = b.seq_id AND tb.position = b.position
            WHERE {where_a} AND {where_b} AND ta.token_id = tb.token_id
            GROUP BY a.layer ORDER BY a.layer""", [*params_a, *params_b])
