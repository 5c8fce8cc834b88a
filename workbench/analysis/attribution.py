"""Direct logit attribution (table `logit_attribution`, `--attribution`) and activation patching (table `patching`,
probes/patching.py, an intervention) over DuckDB.

Component groups (`GROUPS`): the attribution table's components folded into what a reader compares: attention heads,
DeltaNet heads, unsplit mixers, routed experts, shared experts, dense MLPs, the embedding, and the remainders the
splits leave (~0)."""

from __future__ import annotations

import pandas as pd

from .db import Scope, TraceDB

GROUPS = {"attention_head": "attention", "deltanet_head": "DeltaNet", "mixer": "mixer (unsplit)",
          "mixer_rest": "remainder", "moe_rest": "remainder", "expert": "routed experts",
          "shared_expert": "shared expert", "mlp": "dense MLP", "embedding": "embedding"}
_GROUP_SQL = "CASE component " + " ".join(f"WHEN '{c}' THEN '{g}'" for c, g in GROUPS.items()) + " END"


def attributed_positions(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Every attributed (sequence, position): seq_id, position, target_token_id, foil_token_id, model_logit, total
    (the components' sum) and the target token's string."""
    where, params = scope.where("a", layer=False)
    return db.frame(
        f"SELECT a.seq_id, a.position, any_value(a.target_token_id) AS target_token_id, "
        f"any_value(a.foil_token_id) AS foil_token_id, any_value(a.model_logit) AS model_logit, "
        f"sum(a.value) AS total, any_value(t.token) AS target FROM logit_attribution a "
        f"LEFT JOIN tokens t ON t.run_id = a.run_id AND t.seq_id = a.seq_id AND t.position = a.position + 1 "
        f"WHERE {where} GROUP BY a.seq_id, a.position ORDER BY a.seq_id, a.position", params)


def contributions_by_layer(db: TraceDB, scope: Scope, seq_id: str | None = None,
                           position: int | None = None) -> pd.DataFrame:
    """Per layer (-1 = the embedding) and component group: the contribution to the logit (difference), summed over
    the group's components and averaged over the attributed positions in scope (or one position). Columns: layer,
    group, value."""
    where, params = scope.where("a", layer=False)
    if seq_id is not None:
        where, params = f"{where} AND a.seq_id = ?", [*params, seq_id]
    if position is not None:
        where, params = f"{where} AND a.position = ?", [*params, int(position)]
    return db.frame(
        f"SELECT coalesce(layer, -1) AS layer, grp AS \"group\", sum(value) / count(DISTINCT seq_id || ':' || position) "
        f"AS value FROM (SELECT a.*, {_GROUP_SQL} AS grp FROM logit_attribution a WHERE {where}) "
        f"GROUP BY 1, 2 ORDER BY 1, 2", params)


def contributions_by_group(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per component group: the mean contribution over the attributed positions in scope and its share of the mean
    model logit (difference). Columns: group, value, share."""
    frame = contributions_by_layer(db, scope).groupby("group", as_index=False).value.sum()
    total = float(attributed_positions(db, scope).model_logit.mean())
    frame["share"] = frame.value / total if total else float("nan")
    return frame.sort_values("value", ascending=False, key=abs).reset_index(drop=True)


def top_components(db: TraceDB, scope: Scope, kind: str, n: int = 10) -> pd.DataFrame:
    """The `n` heads (kind 'head') or routed experts (kind 'expert') with the largest mean |contribution| over the
    attributed positions in scope: layer, component, index (head or expert), value (mean over positions where it
    wrote), positions (how many), targets (the target tokens it wrote most for)."""
    if kind not in ("head", "expert"):
        raise ValueError(f"kind must be 'head' or 'expert', got {kind!r}")
    where, params = scope.where("a", layer=False)
    column = "head" if kind == "head" else "expert"
    test = "a.component LIKE '%_head'" if kind == "head" else "a.component = 'expert'"
    return db.frame(
        f"SELECT a.layer, a.component, a.{column} AS \"index\", avg(a.value) AS value, count(*) AS positions, "
        f"string_agg(DISTINCT t.token, ' ') AS targets FROM logit_attribution a "
        f"LEFT JOIN tokens t ON t.run_id = a.run_id AND t.seq_id = a.seq_id AND t.position = a.position + 1 "
        f"WHERE {where} AND {test} AND (a.routing_weight IS NOT NULL OR a.component <> 'expert') "
        f"GROUP BY 1, 2, 3 ORDER BY abs(avg(a.value)) DESC LIMIT {int(n)}", params)


def patching_grid(db: TraceDB, scope: Scope, site: str) -> pd.DataFrame:
    """Mean recovery over the pairs in scope per (layer, position range) of one site kind (heads: per layer and
    head at the range 'last'). Columns: layer, range (or head), recovery, pairs."""
    where, params = scope.where("p", layer=True, position=False)
    column = "\"index\"" if site == "head" else "\"range\""
    extra = " AND p.\"range\" = 'last'" if site == "head" else ""
    frame = db.frame(
        f"SELECT p.layer, p.{column} AS col, avg(p.recovery) AS recovery, count(DISTINCT p.pair) AS pairs "
        f"FROM patching p WHERE {where} AND p.site = ?{extra} GROUP BY 1, 2 ORDER BY 1, 2", [*params, site])
    return frame.rename(columns={"col": "head" if site == "head" else "range"})
