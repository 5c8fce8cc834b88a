"""Routing tables in, expert-load and per-token tables out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def expert_load(routing: pa.Table, num_experts: int | None = None) -> pd.DataFrame:
    """How often each expert is chosen, per layer.

    routing: rows with `layer` and `topk_ids` (list of expert ids).
    Returns columns layer, expert, count, fraction (count / (tokens x k) of that layer: rows of a layer
    sum to 1); every (layer, expert) pair appears, unused experts with count 0.
    """
    ids = pc.list_flatten(routing["topk_ids"]).to_numpy().astype(np.int64)
    lengths = pc.list_value_length(routing["topk_ids"]).to_numpy()
    layers_per_id = np.repeat(routing["layer"].to_numpy().astype(np.int64), lengths)
    layers = np.unique(routing["layer"].to_numpy())
    num_experts = int(num_experts or (ids.max() + 1 if len(ids) else 0))
    frames = []
    for layer in layers:
        counts = np.bincount(ids[layers_per_id == layer], minlength=num_experts)
        frames.append(pd.DataFrame({
            "layer": int(layer),
            "expert": np.arange(num_experts),
            "count": counts,
            "fraction": counts / max(counts.sum(), 1),
        }))
    if not frames:
        return pd.DataFrame(columns=["layer", "expert", "count", "fraction"])
    return pd.concat(frames, ignore_index=True)


def load_matrix(load: pd.DataFrame, value: str = "fraction") -> pd.DataFrame:
    """expert_load's long table -> layer x expert matrix."""
    return load.pivot(index="layer", columns="expert", values=value).sort_index()


def sequence_routing(routing: pa.Table, tokens: pa.Table, seq_id: str, layer: int) -> pd.DataFrame:
    """One sequence at one layer: per position, the token and its top-k experts and weights (rank order).
    Tables holding several runs must carry `run_id` (as Trace.read gives it); the sequence is then
    looked up within each run, and a seq_id present in two runs is refused."""
    rows = routing.filter(pc.and_(pc.equal(routing["seq_id"], seq_id), pc.equal(routing["layer"], layer)))
    toks = tokens.filter(pc.equal(tokens["seq_id"], seq_id))
    keys = ["position"]
    if "run_id" in rows.column_names and "run_id" in toks.column_names:
        runs = set(rows["run_id"].to_pylist())
        if len(runs) > 1:
            raise ValueError(f"sequence {seq_id!r} is in {len(runs)} runs; read one run (run_id=...) first")
        keys = ["run_id", "position"]
    frame = rows.select([*keys, "topk_ids", "topk_weights", "router_entropy"]).to_pandas()
    frame = frame.merge(toks.select([*keys, "token"]).to_pandas(), on=keys)
    frame = frame.sort_values("position").reset_index(drop=True)
    return frame


def topk_long(frame: pd.DataFrame) -> pd.DataFrame:
    """sequence_routing's rows -> one row per (position, rank) with expert and weight."""
    exploded = frame.explode(["topk_ids", "topk_weights"])
    exploded["rank"] = exploded.groupby("position").cumcount()
    return exploded.rename(columns={"topk_ids": "expert", "topk_weights": "weight"}).astype(
        {"expert": int, "weight": float}
    )
