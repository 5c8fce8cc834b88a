"""Retrieval-head scores on hand-built copy steps, and the `retrieval` table summary."""

import numpy as np
import pandas as pd

from workbench.analysis.retrieval import copy_hits, retrieval_scores, top_retrieval_heads


def test_copy_hits_by_hand():
    """Context 'x a b c a y' (ids), needle = positions 1..3 ('a b c'); the model copies a, b, c."""
    context = np.array([9, 1, 2, 3, 1, 8])
    produced = np.array([1, 2, 3])
    # [S=3, L=1, H=4]: head 0 copies each time; head 1 looks at the right token but outside the needle
    # (position 4 holds 'a' too); head 2 looks inside the needle at the wrong token; head 3 has no key.
    keys = np.array([[[1, 4, 2, -1]], [[2, 4, 1, -1]], [[3, 5, 3, -1]]])
    hits = copy_hits(keys, context, produced, (1, 4))
    assert hits.shape == (3, 1, 4)
    assert hits[:, 0].tolist() == [[True, False, False, False], [True, False, False, False],
                                   [True, False, True, False]]
    np.testing.assert_allclose(retrieval_scores(hits), [[1.0, 0.0, 1 / 3, 0.0]])


def test_top_heads_average_over_sequences():
    table = pd.DataFrame({"seq_id": ["a", "a", "b", "b"], "layer": [3, 3, 3, 3], "head": [0, 1, 0, 1],
                          "steps": [5, 5, 4, 4], "hits": [5, 1, 2, 0], "score": [1.0, 0.2, 0.5, 0.0]})
    top = top_retrieval_heads(table, n=1)
    assert top[["layer", "head", "hits", "steps", "sequences"]].values.tolist() == [[3, 0, 7, 9, 2]]
    assert top.score.iloc[0] == 0.75
