"""Decay gates from their log: half-life by hand, and the storage claim (float32 g gives exp(g) to <= 1e-3
relative down to 1e-30, where float16 exp(g) or float16 g do not). Criterion: elementwise relative error against
exp computed in fp64 from the exact log decay."""

import math

import numpy as np
import pytest
import torch

from workbench.ops.decay import decay_factor, half_life, log_decay_for_storage


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_half_life_by_hand(kind):
    """exp(g h) = 1/2: g = -ln2 -> 1 token, -ln2/10 -> 10, -1e-3 -> 693.147...; g = 0 -> inf; NaN stays NaN."""
    values = [-math.log(2), -math.log(2) / 10, -1e-3, 0.0, math.nan]
    g = np.array(values) if kind == "numpy" else torch.tensor(values, dtype=torch.float64)
    h = half_life(g)
    assert type(h) is type(g) and h.dtype == g.dtype
    h = np.asarray(h)
    np.testing.assert_allclose(h[:3], [1.0, 10.0, 693.1471805599453], rtol=1e-12)
    assert h[3] == math.inf and math.isnan(h[4])
    np.testing.assert_allclose(np.asarray(decay_factor(g))[:4], [0.5, 0.5**0.1, math.exp(-1e-3), 1.0], rtol=1e-12)


def test_narrow_inputs_are_widened_to_float32():
    g16 = torch.tensor([-0.5, 0.0], dtype=torch.bfloat16)
    assert half_life(g16).dtype == torch.float32 and decay_factor(g16).dtype == torch.float32
    assert half_life(np.array([-0.5], dtype=np.float16)).dtype == np.float32


def test_float32_log_decay_keeps_exp_to_1e_minus_3_down_to_1e_minus_30():
    target = np.logspace(0, -30, 301)  # exp(g) from 1 down to 1e-30
    g = np.log(target)  # exact log decay, fp64
    stored = log_decay_for_storage(g)
    assert stored.dtype == np.float32
    for read in (decay_factor(stored), decay_factor(torch.from_numpy(stored)).numpy()):
        assert read.dtype == np.float32
        rel = np.abs(read.astype(np.float64) - target) / target
        assert rel.max() <= 1e-3, rel.max()
        assert rel.max() <= 1e-5  # the actual margin: |g| eps32 ~ 69 * 6e-8
    # why not float16: exp(g) stored as float16 is zero / subnormal far above 1e-30 ...
    as_half = target.astype(np.float16).astype(np.float64)
    assert (as_half[target < 1e-8] == 0).all()
    # ... and float16 g is too coarse at |g| ~ 69 (spacing 2^-4: exp error up to ~3%)
    rel16 = np.abs(np.exp(g.astype(np.float16).astype(np.float64)) - target) / target
    assert rel16.max() > 1e-2
