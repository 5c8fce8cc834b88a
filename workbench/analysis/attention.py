"""Attention-recall tables in (`attention`, `attention_gate`, `spans`), per-head summaries out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def span_names(spans: pa.Table) -> list[str]:
    """Span names of a run, in first-seen order."""
    return list(dict.fromkeys(spans["span"].to_pylist())) if spans.num_rows else []


def _sequence_keys(*tables: pa.Table) -> list[str]:
    """Columns that identify a sequence in every table: run_id too when all tables carry it."""
    return ["run_id", "seq_id"] if all("run_id" in t.column_names for t in tables) else ["seq_id"]


def head_span_mass(attention: pa.Table, spans: pa.Table, span: str) -> pd.DataFrame:
    """Mean attention mass on `span` per (layer, head), over the query rows that come after the whole span
    (position >= its end_token, so every span token is visible) of every sequence that has it.

    Returns columns layer, head, mass (mean, 0..1), rows (query rows averaged).
    """
    keys = _sequence_keys(attention, spans)  # seq ids repeat across runs (--text is always text-0)
    ends = spans.filter(pc.equal(spans["span"], span)).select([*keys, "end_token"]).to_pandas()
    frame = attention.select([*keys, "position", "layer", "head"]).to_pandas()
    frame["mass"] = pc.map_lookup(attention["span_mass"], pa.scalar(span), "first").to_numpy(zero_copy_only=False)
    frame = frame.merge(ends, on=keys)
    frame = frame[(frame.position >= frame.end_token) & frame.mass.notna()]
    grouped = frame.groupby(["layer", "head"]).agg(mass=("mass", "mean"), rows=("mass", "size")).reset_index()
    return grouped


def layer_head_matrix(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Long (layer, head, value) rows -> layer x head matrix."""
    return frame.pivot(index="layer", columns="head", values=value).sort_index()


def query_topk(attention: pa.Table, seq_id: str, position: int, layer: int) -> pd.DataFrame:
    """One query row's most-attended keys at one layer, per head: columns head, rank, key_position, weight
    (from the stored top-k; padding -1 dropped)."""
    mask = pc.and_(pc.and_(pc.equal(attention["seq_id"], seq_id), pc.equal(attention["position"], position)),
                   pc.equal(attention["layer"], layer))
    rows = attention.filter(mask).select(["head", "topk_positions", "topk_weights"]).to_pandas()
    if rows.empty:
        return pd.DataFrame(columns=["head", "rank", "key_position", "weight"])
    long = rows.explode(["topk_positions", "topk_weights"])
    long["rank"] = long.groupby("head").cumcount()
    long = long.rename(columns={"topk_positions": "key_position", "topk_weights": "weight"})
    long = long.astype({"key_position": int, "weight": float, "head": int})
    return long[long.key_position >= 0][["head", "rank", "key_position", "weight"]].reset_index(drop=True)


def head_gate_summary(gate: pa.Table) -> pd.DataFrame:
    """`attention_gate` -> per (layer, head): gate_mean (mean over tokens of the head's mean gate) and
    gate_low_fraction (mean fraction of gate entries < 0.1)."""
    if gate.num_rows == 0:
        return pd.DataFrame(columns=["layer", "head", "gate_mean", "gate_low_fraction"])
    layers = gate["layer"].to_numpy()
    means = np.stack(gate["head_gate_mean"].to_numpy(zero_copy_only=False)).astype(np.float64)  # [N, H]
    lows = np.stack(gate["head_gate_low_fraction"].to_numpy(zero_copy_only=False)).astype(np.float64)
    frames = []
    for layer in np.unique(layers):
        rows = layers == layer
        frames.append(pd.DataFrame({"layer": int(layer), "head": np.arange(means.shape[1]),
                                    "gate_mean": means[rows].mean(0), "gate_low_fraction": lows[rows].mean(0)}))
    return pd.concat(frames, ignore_index=True)
