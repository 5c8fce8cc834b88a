"""What the probe scripts print and write: tables at a precision a reader can take in, JSON without float32 noise.

A float32 column read into Python prints as 0.20000000298023224; the probes print and store what was measured, to
the precision it has.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

JSON_DIGITS = 6  # significant digits kept in JSON: float32 holds about 7, so none that were measured are lost


def number(value: float) -> str:
    """One table cell: three decimals (0.875, 12.250, 1.000), or two significant digits in scientific notation below
    0.001 (3.3e-12), so a tiny share never reads as 0.000; NaN as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    return f"{value:.3f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.1e}"


def table_text(frame: pd.DataFrame, index: bool = True) -> str:
    """A frame as text with `number` for every float cell (integers and strings as they are)."""
    return frame.to_string(index=index, float_format=number, na_rep="-")


def rounded(value, digits: int = JSON_DIGITS):
    """`value` (a float, or dicts, lists and tuples of them, nested) with every float rounded to `digits`
    significant digits: 0.20000000298023224 -> 0.2. NaN and infinities stay as they are; numpy scalars become Python
    numbers; other values are unchanged."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if not math.isfinite(value) or value == 0 else float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value
