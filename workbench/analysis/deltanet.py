"""DeltaNet state tables in, per-sequence frames and layer x head matrices out (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _rows_of(table: pa.Table, seq_id: str | None) -> pd.DataFrame:
    rows = table if seq_id is None else table.filter(pc.equal(table["seq_id"], seq_id))
    return rows.to_pandas()


def sequence_state(deltanet: pa.Table, seq_id: str) -> pd.DataFrame:
    """One sequence's `deltanet` rows (state norm, decay, beta, half-life per token and layer), sorted."""
    return _rows_of(deltanet, seq_id).sort_values(["layer", "position"]).reset_index(drop=True)


def heads_long(heads: pa.Table, seq_id: str, layer: int | None = None) -> pd.DataFrame:
    """`deltanet_heads` rows of a sequence (optionally one layer) -> one row per (layer, position, head) with
    state_norm, decay, beta, half_life."""
    frame = _rows_of(heads, seq_id)
    if layer is not None:
        frame = frame[frame.layer == layer]
    columns = ["state_norm", "decay", "beta", "half_life"]
    if frame.empty:
        return pd.DataFrame(columns=["layer", "position", "head", *columns])
    long = frame[["layer", "position", *columns]].explode(columns)
    long["head"] = long.groupby(["layer", "position"]).cumcount()
    return long.astype({c: float for c in columns}).sort_values(["layer", "head", "position"]).reset_index(drop=True)


def head_summary(summary: pa.Table, seq_id: str | None = None) -> pd.DataFrame:
    """`deltanet_head_summary` -> one row per (layer, head) over the chosen sequence (all when None), each
    sequence weighted by its tokens; half_life = ln 2 / -(token-weighted mean g)."""
    frame = _rows_of(summary, seq_id)
    if frame.empty:
        return pd.DataFrame(columns=["layer", "head", "tokens", "decay_mean", "beta_mean", "state_norm_mean",
                                     "log_decay_mean", "half_life"])
    weighted = frame.assign(**{c: frame[c] * frame.tokens for c in
                               ("decay_mean", "beta_mean", "state_norm_mean", "log_decay_mean")})
    out = weighted.groupby(["layer", "head"], as_index=False)[
        ["tokens", "decay_mean", "beta_mean", "state_norm_mean", "log_decay_mean"]].sum()
    for column in ("decay_mean", "beta_mean", "state_norm_mean", "log_decay_mean"):
        out[column] = out[column] / out.tokens
    with np.errstate(divide="ignore"):
        out["half_life"] = np.where(out.log_decay_mean < 0, np.log(2.0) / -out.log_decay_mean, np.inf)
    return out


def layer_head_matrix(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """(layer, head, value) rows -> layer x head matrix."""
    return frame.pivot(index="layer", columns="head", values=value).sort_index()


def recall_curves(recall: pa.Table, seq_id: str) -> pd.DataFrame:
    """`state_recall` rows of a sequence with distance = position - key_pos (tokens since the key was written)."""
    frame = _rows_of(recall, seq_id)
    frame["distance"] = frame.position - frame.key_pos
    return frame.sort_values(["pair", "layer", "position"]).reset_index(drop=True)


def snapshot_matrix(snapshots: pa.Table, seq_id: str, position: int, value: str = "eff_rank") -> pd.DataFrame:
    """`state_snapshots` of a sequence at one position -> layer x head matrix of `value`."""
    frame = _rows_of(snapshots, seq_id)
    return layer_head_matrix(frame[frame.position == position], value)
