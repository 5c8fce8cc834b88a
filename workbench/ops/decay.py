"""Decay gates read from their log: the one place that turns a stored log decay g into a decay factor or half-life.

Convention (Gated DeltaNet and Kimi Delta Attention alike): g is the log decay, g <= 0; the state is multiplied by the
decay factor exp(g) in (0, 1] each token; an untouched memory halves after half_life = ln 2 / (-g) tokens.
Why store g and not exp(g): a fast-forgetting head has exp(g) ~ 1e-9 (g ~ -20), which float16 (smallest normal
6.1e-5, smallest subnormal 6e-8) stores as a subnormal or 0; float16 g itself is off by up to ~0.03 at |g| ~ 70 (a 3%
error in exp(g)). float32 g keeps exp(g), computed on read, to ~1e-5 relative down to exp(g) = 1e-30
(tests/ops/test_decay.py). Every function takes a numpy array or a torch tensor and returns the same kind.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LN2 = math.log(2.0)


def _at_least_float32(g):
    if isinstance(g, torch.Tensor):
        return g.to(torch.promote_types(g.dtype, torch.float32))
    g = np.asarray(g)
    return g.astype(np.promote_types(g.dtype, np.float32))


def log_decay_for_storage(g):
    """g: log decay, any shape -> float32 (the trace dtype for g: exactness argued in the module doc)."""
    return g.to(torch.float32) if isinstance(g, torch.Tensor) else np.asarray(g, dtype=np.float32)


def decay_factor(g):
    """exp(g): the per-token state multiplier in (0, 1], computed in g's dtype or float32 if narrower.

    g: log decay (<= 0), any shape -> same shape. float32 underflows below exp(g) ~ 1e-38 (g < -87.3); pass float64
    for more range."""
    g = _at_least_float32(g)
    return g.exp() if isinstance(g, torch.Tensor) else np.exp(g)


def half_life(g):
    """ln 2 / (-g) in tokens: after that many tokens of decay g an untouched memory has halved (exp(g h) = 1/2).

    g: log decay (<= 0), any shape -> same shape, in g's dtype or float32 if narrower. inf where g >= 0 (no decay),
    NaN where g is NaN. Applied to a mean log decay, it is the half-life of the mean decay rate."""
    g = _at_least_float32(g)
    if isinstance(g, torch.Tensor):
        decays = g < 0
        h = LN2 / torch.where(decays, -g, torch.ones_like(g))
        return torch.where(decays, h, torch.where(g.isnan(), g, torch.full_like(g, math.inf)))
    decays = g < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        h = LN2 / np.where(decays, -g, 1.0)
    return np.where(decays, h, np.where(np.isnan(g), g, np.inf)).astype(g.dtype)
