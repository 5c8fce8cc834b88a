"""Pure reductions of expert-load frames: balance per layer and Jensen-Shannon divergence between loads."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd


def load_balance(load: pd.DataFrame, keys: tuple[str, ...] = ("layer",)) -> pd.DataFrame:
    """Balance of each layer's load (expert_load rows, every expert listed, zeros included).

    Returns per key: experts, cv (std / mean of the counts, population std; 0 = perfectly even), max_over_mean,
    entropy_norm (entropy of the load fractions / ln E, 1 = uniform), unused (experts never chosen), top1pct_share
    (share of all slots taken by the busiest ceil(1% of E) experts)."""
    rows = []
    for key, group in load.groupby(list(keys), sort=True):
        counts = group["count"].to_numpy(dtype=float)
        experts, total = len(counts), counts.sum()
        p = counts / total if total else np.zeros_like(counts)
        nonzero = p[p > 0]
        busiest = int(np.ceil(0.01 * experts))
        rows.append({
            **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
            "experts": experts,
            "cv": counts.std() / counts.mean() if total else np.nan,
            "max_over_mean": counts.max() / counts.mean() if total else np.nan,
            "entropy_norm": float(-(nonzero * np.log(nonzero)).sum() / np.log(experts)) if experts > 1 else np.nan,
            "unused": int((counts == 0).sum()),
            "top1pct_share": float(np.sort(p)[::-1][:busiest].sum()),
        })
    return pd.DataFrame(rows)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two distributions (normalised here), in [0, 1]."""
    p = np.asarray(p, float) / np.sum(p)
    q = np.asarray(q, float) / np.sum(q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / m[mask])).sum())

    return (kl(p) + kl(q)) / 2


def label_divergence(by_label: pd.DataFrame) -> pd.DataFrame:
    """load_by_label rows -> per layer and pair of labels: layer, label_a, label_b, js_bits (0 = same load)."""
    rows = []
    for layer, group in by_label.groupby("layer", sort=True):
        loads = {label: g.sort_values("expert")["count"].to_numpy() for label, g in group.groupby("label")}
        for a, b in itertools.combinations(sorted(loads), 2):
            rows.append({"layer": layer, "label_a": a, "label_b": b, "js_bits": js_divergence(loads[a], loads[b])})
    return pd.DataFrame(rows, columns=["layer", "label_a", "label_b", "js_bits"])


def drift_divergence(drift: pd.DataFrame, min_share: float = 0.0) -> pd.DataFrame:
    """load_drift rows -> per layer and bucket: JS divergence (bits) of the bucket's load from the layer's load
    over all buckets (layer, bucket, slots, js_bits). Buckets holding fewer than `min_share` x the fullest bucket's
    slots are left out (a last bucket of a few tokens diverges by chance, not by drift)."""
    if min_share > 0 and not drift.empty:
        slots = drift.groupby(["layer", "bucket"])["count"].transform("sum")
        drift = drift[slots >= min_share * slots.max()]
    rows = []
    for layer, group in drift.groupby("layer", sort=True):
        overall = group.groupby("expert")["count"].sum().sort_index().to_numpy()
        for bucket, g in group.groupby("bucket", sort=True):
            counts = g.sort_values("expert")["count"].to_numpy()
            rows.append({"layer": layer, "bucket": bucket, "slots": int(counts.sum()),
                         "js_bits": js_divergence(counts, overall)})
    return pd.DataFrame(rows, columns=["layer", "bucket", "slots", "js_bits"])


MIN_LIFT_SUPPORT = 0.01  # an expert's lift counts only where it takes at least 1% of the label's top-k slots


def over_represented(by_label: pd.DataFrame, top: int = 5, min_fraction: float = MIN_LIFT_SUPPORT) -> pd.DataFrame:
    """load_by_label rows -> each (layer, label)'s `top` most over-represented experts: layer, label, rank (1 = most),
    expert, fraction (share of the label's selections), lift = fraction / the expert's share over all labels. Only
    experts with at least `min_fraction` of the label's selections (the support: without it an expert the label
    chose once, and the others never, tops the ranking on a 0.01% share); ties by fraction, then expert id."""
    if not 0 <= min_fraction <= 1:
        raise ValueError(f"min_fraction is a share of the label's selections in [0, 1], got {min_fraction}")
    if by_label.empty:
        return pd.DataFrame(columns=["layer", "label", "rank", "expert", "fraction", "lift"])
    overall = by_label.groupby(["layer", "expert"])["count"].sum()
    overall = (overall / overall.groupby(level="layer").transform("sum")).rename("overall").reset_index()
    frame = by_label[(by_label["count"] > 0) & (by_label["fraction"] >= min_fraction)].merge(
        overall, on=["layer", "expert"])
    frame["lift"] = frame["fraction"] / frame["overall"]
    frame = frame.sort_values(["layer", "label", "lift", "fraction", "expert"], ascending=[True, True, False, False, True])
    frame = frame.groupby(["layer", "label"], sort=False).head(top).copy()
    frame["rank"] = frame.groupby(["layer", "label"], sort=False).cumcount() + 1
    return frame[["layer", "label", "rank", "expert", "fraction", "lift"]].reset_index(drop=True)
