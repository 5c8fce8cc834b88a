"""Sparsity probes over DuckDB: expert saliency per layer and expert, the shared expert's share, routing
specialisation (trained against random init) and the prune what-if curves. Each function takes a TraceDB and a
Scope and returns a small frame; sequences are combined weighted by their token counts."""

from __future__ import annotations

import pandas as pd

from .balance import MIN_LIFT_SUPPORT, over_represented
from .db import Scope, TraceDB
from .routing import load_by_label


def expert_saliency(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per (layer, expert) over the scope's sequences: count (selections), gate_mean, output_norm_mean, reap (each a
    count-weighted mean of the per-sequence means, i.e. the mean over all the expert's tokens)."""
    where, params = scope.where(position=False)
    return db.frame(
        f"""SELECT layer, expert, sum(count)::BIGINT AS count,
                   sum(count * gate_mean) / sum(count) AS gate_mean,
                   sum(count * output_norm_mean) / sum(count) AS output_norm_mean,
                   sum(count * reap) / sum(count) AS reap
            FROM expert_saliency WHERE {where} GROUP BY layer, expert ORDER BY layer, expert""", params)


def shared_expert_share(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per layer: tokens, share_mean (token-weighted), shared_norm_mean, routed_norm_mean."""
    where, params = scope.where(position=False)
    return db.frame(
        f"""SELECT layer, sum(tokens)::BIGINT AS tokens, sum(tokens * share_mean) / sum(tokens) AS share_mean,
                   sum(tokens * shared_norm_mean) / sum(tokens) AS shared_norm_mean,
                   sum(tokens * routed_norm_mean) / sum(tokens) AS routed_norm_mean
            FROM shared_expert_share WHERE {where} GROUP BY layer ORDER BY layer""", params)


def label_js_by_layer(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per (model, layer): js_bits averaged over label pairs (label_divergence rows of the probe run)."""
    where, params = scope.where(position=False)
    return db.frame(f"SELECT model, layer, avg(js_bits) AS js_bits, count(*) AS pairs FROM label_divergence "
                    f"WHERE {where} GROUP BY model, layer ORDER BY model, layer", params)


def label_top_experts(db: TraceDB, scope: Scope, model: str = "trained",
                      min_fraction: float = MIN_LIFT_SUPPORT) -> pd.DataFrame:
    """Each label's most over-represented experts of one model (the routing specialisation probe's run): layer, label,
    rank, expert, fraction, lift; only experts taking at least `min_fraction` of the label's top-k slots. Computed by
    the probe's own function (balance.over_represented, as many per label as the probe kept) from the routing run its
    manifest names for `model` when this folder holds it, so runs written before the support existed rank supported
    experts too; otherwise the probe's stored rows with that support, re-ranked."""
    manifest = next((m for m in db.trace.manifests() if m["run_id"] == scope.run_id), {})
    probe = manifest.get("probe") or {}
    routing_run = (probe.get("runs") or {}).get(model)
    if routing_run and db.has("routing") and routing_run in db.trace.run_ids():
        routing_scope = Scope(routing_run, scope.layers)
        return over_represented(load_by_label(db, routing_scope), int(probe.get("top", 5)), min_fraction)
    where, params = scope.where(position=False)
    rows = db.frame(f"SELECT layer, label, rank, expert, fraction, lift FROM label_experts WHERE {where} AND "
                    f"model = ? AND fraction >= ? ORDER BY layer, label, rank", [*params, model, min_fraction])
    rows["rank"] = rows.groupby(["layer", "label"]).cumcount() + 1
    return rows


def vocab_fixedness(db: TraceDB, scope: Scope, threshold: float = 0.9) -> pd.DataFrame:
    """Per (model, layer): tokens (seen >= the probe's min_count), fixed (share of them whose top-1 expert is the
    same in >= threshold of occurrences), top_share_mean."""
    where, params = scope.where(position=False)
    return db.frame(f"SELECT model, layer, count(*) AS tokens, avg((top_share >= ?)::INTEGER) AS fixed, "
                    f"avg(top_share) AS top_share_mean FROM vocab_specialisation WHERE {where} "
                    f"GROUP BY model, layer ORDER BY model, layer", [threshold, *params])


def pruning_curves(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """expert_pruning rows summarised per (criterion, fraction): accuracy (mean exact match over suites), loss, and
    one column per suite. The baseline ('none', fraction 0) is repeated under every criterion so curves start at 0."""
    where, params = scope.where(layer=False, position=False)
    rows = db.frame(f"SELECT criterion, fraction, suite, metric, value FROM expert_pruning WHERE {where}", params)
    if rows.empty:
        return pd.DataFrame(columns=["criterion", "fraction", "accuracy", "loss"])
    accuracy = rows[rows.metric == "exact_match"].groupby(["criterion", "fraction"])["value"].mean().rename("accuracy")
    loss = rows[rows.metric == "loss"].groupby(["criterion", "fraction"])["value"].mean().rename("loss")
    suites = rows[rows.metric == "exact_match"].pivot_table(index=["criterion", "fraction"], columns="suite",
                                                            values="value")
    curves = pd.concat([accuracy, loss, suites], axis=1).reset_index()
    base = curves[curves.criterion == "none"]
    criteria = [c for c in curves.criterion.unique() if c != "none"]
    starts = [base.assign(criterion=c) for c in criteria] if not base.empty else []
    return pd.concat([*starts, curves[curves.criterion != "none"]], ignore_index=True).sort_values(
        ["criterion", "fraction"]).reset_index(drop=True)
