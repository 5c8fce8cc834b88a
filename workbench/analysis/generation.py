"""Generations over DuckDB (`workbench generate`): a sequence's tokens with their phase and log-probability, how
routing drifts from the prompt (phase 'prefill') into the generated tokens (phase 'decode'), and MTP draft
acceptance (table `drafts`, `--speculative mtp`)."""

from __future__ import annotations

import pandas as pd

from .db import Scope, TraceDB

def generated_runs(db: TraceDB) -> list[str]:
    """Run ids that hold decode rows (written by `workbench generate`), oldest first."""
    if not db.has("tokens"):
        return []
    frame = db.frame("SELECT DISTINCT run_id FROM tokens WHERE phase = 'decode' ORDER BY run_id")
    return frame.run_id.tolist()


def generation_tokens(db: TraceDB, scope: Scope, seq_id: str) -> pd.DataFrame:
    """One sequence's tokens in order: position, token, phase, logprob (ln p of a generated token when it was
    chosen; null for the prompt's tokens). The per-layer measures are the token explorer's (analysis/tokens.py)."""
    where, params = scope.where("t", layer=False)
    return db.frame(f"SELECT t.position, t.token, t.phase, t.logprob FROM tokens t WHERE {where} AND t.seq_id = ? "
                    "ORDER BY t.position", [*params, seq_id])


def routing_drift(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per MoE layer: how far the expert load of the generated tokens is from the prompt's, as the Jensen-Shannon
    divergence in bits (0 = the same load, 1 = disjoint) between the two distributions of top-k selections, and
    the selections counted on each side. Columns: layer, js_bits, prefill_selections, decode_selections."""
    where, params = scope.where("r", position=False)
    counts = db.frame(
        f"SELECT r.layer, r.phase, e.expert, count(*) AS n FROM routing r, unnest(r.topk_ids) AS e(expert) "
        f"WHERE {where} AND r.phase IN ('prefill', 'decode') GROUP BY ALL", params)
    rows = []
    for layer, group in counts.groupby("layer"):
        table = group.pivot_table(index="expert", columns="phase", values="n", fill_value=0)
        if not {"prefill", "decode"} <= set(table.columns):
            continue
        p, q = table["prefill"] / table["prefill"].sum(), table["decode"] / table["decode"].sum()
        rows.append({"layer": int(layer), "js_bits": js_bits(p, q), "prefill_selections": int(table["prefill"].sum()),
                     "decode_selections": int(table["decode"].sum())})
    return pd.DataFrame(rows, columns=["layer", "js_bits", "prefill_selections", "decode_selections"])


def js_bits(p: pd.Series, q: pd.Series) -> float:
    """Jensen-Shannon divergence of two distributions over the same index, in bits (log base 2), in [0, 1]."""
    import numpy as np

    p, q = p.to_numpy(dtype=float), q.to_numpy(dtype=float)
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / b[mask])).sum())

    return (kl(p, m) + kl(q, m)) / 2


def draft_acceptance(db: TraceDB, scope: Scope) -> pd.DataFrame:
    """Per draft index within a round (0 = the first drafted token): drafts, accepted (share kept), mean p_draft and
    p_trunk (each drafted token's probability under the head and under the trunk)."""
    where, params = scope.where("d", layer=False, position=False)
    return db.frame(
        f"SELECT d.draft, count(*) AS drafts, avg(d.accepted::INT) AS accepted, avg(d.p_draft) AS p_draft, "
        f"avg(d.p_trunk) AS p_trunk FROM drafts d WHERE {where} GROUP BY 1 ORDER BY 1", params)
