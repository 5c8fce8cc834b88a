"""What probes print and write: table cells at three decimals (scientific below 0.001), JSON floats without float32
noise (tracing.probe_run.rounded), checked on values whose float32 and decimal forms are known."""

import json
import math
import re

import numpy as np
import pandas as pd

from workbench.probes.output import number, table_text
from workbench.tracing.probe_run import rounded


def test_number_keeps_small_shares_visible():
    assert [number(0.875), number(1), number(12.25), number(0.0), number(3.287e-12), number(float("nan"))] == [
        "0.875", "1.000", "12.250", "0.000", "3.3e-12", "-"]


def test_table_text_formats_float_cells_only():
    frame = pd.DataFrame({"layer": [3, 7], "head": [0, 2], "mass": [np.float32(0.2), 1.1e-18]})
    lines = table_text(frame, index=False).splitlines()
    assert lines[1].split() == ["3", "0", "0.200"] and lines[2].split() == ["7", "2", "1.1e-18"]


def test_rounded_removes_float32_noise_and_keeps_float64_parameters():
    noisy = float(np.float32(0.2))
    assert noisy == 0.20000000298023224 and rounded(noisy) == 0.2
    record = {"score": np.float32(0.7), "lengths": [512, 1024], "depths": (0.25, 0.1), "name": "x",
              "nan": float("nan"), "precise": 0.123456789012}
    out = rounded(record, 15)
    assert out["score"] == 0.7 and out["depths"] == [0.25, 0.1] and out["lengths"] == [512, 1024]
    assert out["precise"] == 0.123456789012 and math.isnan(out["nan"]) and out["name"] == "x"
    assert rounded(0.123456789012) == 0.123457  # a measured float64 at 6 significant digits
    assert not re.search(r"\d\.\d{9,}", json.dumps(rounded({"s": [float(np.float32(v)) for v in (0.1, 0.3, 2.2)]})))
