"""What the probe scripts print: tables at a precision a reader can take in. A float32 column read into Python prints
as 0.20000000298023224; the probes print what was measured, to the precision it has. (What they write as JSON goes
through tracing.probe_run.rounded.)"""

from __future__ import annotations

import math

import pandas as pd


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
