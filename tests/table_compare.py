"""Compare two traces table by table (tests of batching, resume, engines).

Batched and batch-1 forwards are the same computation for every real token (right padding, causal layers), but a
matrix product over B x T rows may sum in a different order than over T rows: measured on this CPU, even a batch of
two identical rows differs from batch 1 by ~1e-7 in the logits. So integer and string columns (ids, positions, layers,
heads, expert ids, top-k key positions) must be equal, and float columns equal to within float32 reassociation as
stored: rtol 2e-3 (two float16 steps) and atol 1e-5."""

import numpy as np

from workbench.trace import open_trace

KEYS = ["seq_id", "layer", "pair", "position", "head", "span"]


def trace_frames(root, run_id=None) -> dict:
    trace = open_trace(root)
    frames = {}
    for table in trace.tables():
        if trace.has_rows(table, run_id):
            frame = trace.read(table, run_id=run_id).to_pandas().drop(columns="run_id")
            frames[table] = frame.sort_values([k for k in KEYS if k in frame.columns]).reset_index(drop=True)
    return frames


def _values(series):
    first = series.iloc[0] if len(series) else None
    if isinstance(first, np.ndarray) and first.dtype != object:  # list column: lengths, then every entry
        arrays = series.to_numpy()
        return np.concatenate([np.array([len(a) for a in arrays], dtype=first.dtype), *arrays])
    if isinstance(first, np.ndarray):  # span_mass / span_norm_ratio ...: list of {span, mass or share}
        return series.map(lambda row: [tuple(m.values()) for m in row]).tolist()
    return series.to_numpy()


def assert_same_tables(a: dict, b: dict, exact: bool = False) -> None:
    assert sorted(a) == sorted(b)
    for table in a:
        left, right = a[table], b[table]
        assert len(left) == len(right) and list(left.columns) == list(right.columns), table
        for column in left.columns:
            x, y = _values(left[column]), _values(right[column])
            if isinstance(x, list):  # span masses
                assert [[s for s, _ in r] for r in x] == [[s for s, _ in r] for r in y], (table, column)
                x = np.array([v for r in x for _, v in r], dtype=np.float64)
                y = np.array([v for r in y for _, v in r], dtype=np.float64)
            if x.dtype.kind == "f" and not exact:
                np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), rtol=2e-3, atol=1e-5,
                                           equal_nan=True, err_msg=f"{table}.{column}")
            elif x.dtype.kind == "f":
                np.testing.assert_array_equal(x, y, err_msg=f"{table}.{column}")
            else:
                assert np.array_equal(x, y) if x.dtype != object else list(x) == list(y), (table, column)
