"""Retrieval heads (Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context Factuality").

While a model copies a needle token by token, a head "retrieves" at a step when its most-attended key (from
the query that produces the step's token) lies inside the needle span AND holds the very token being
produced: it copy-pastes. A head's retrieval score is the fraction of copying steps where it does.
Pure functions on arrays; the greedy copy loop that records the argmax keys is `workbench/probes/retrieval.py`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def copy_hits(
    argmax_keys: np.ndarray, context_ids: np.ndarray, produced: np.ndarray, needle: tuple[int, int]
) -> np.ndarray:
    """Per step and head: did the head copy the produced token from the needle?

    argmax_keys: [S, L, H] int key position each head attends most at step s (-1 = none).
    context_ids: [T] int token ids of the sequence (prompt, then the tokens fed while generating); covers
                 every position in argmax_keys.
    produced:    [S] int token produced at step s (the greedy argmax, or the forced target).
    needle:      (start, end) token positions of the needle, end exclusive.
    Returns [S, L, H] bool.
    """
    argmax_keys = np.asarray(argmax_keys)
    start, end = needle
    inside = (argmax_keys >= start) & (argmax_keys < end)
    key_tokens = np.asarray(context_ids)[np.clip(argmax_keys, 0, None)]  # [S, L, H]
    return inside & (key_tokens == np.asarray(produced)[:, None, None])


def retrieval_scores(hits: np.ndarray) -> np.ndarray:
    """[S, L, H] bool copy hits -> [L, H] fraction of the S steps where each head copied (0 when S = 0)."""
    steps = hits.shape[0]
    return hits.sum(0) / steps if steps else np.zeros(hits.shape[1:])


def top_retrieval_heads(retrieval: pa.Table | pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `retrieval` table (one row per sequence, layer, head) -> the n heads with the highest mean score
    over sequences: columns layer, head, score (mean), hits (sum), steps (sum), sequences."""
    frame = retrieval.to_pandas() if isinstance(retrieval, pa.Table) else retrieval
    grouped = frame.groupby(["layer", "head"]).agg(
        score=("score", "mean"), hits=("hits", "sum"), steps=("steps", "sum"), sequences=("seq_id", "nunique")
    )
    return grouped.sort_values("score", ascending=False).head(n).reset_index()
