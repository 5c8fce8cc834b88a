"""KDA recall readouts and snapshots from chunk-start states against the fp64 token scan.

Agreement: fp64 fast path to 1e-10 (round-off), fp32 to 1e-4 relative to the largest reference value."""

import math

import pytest
import torch

from workbench.ops.state_norms.kda_chunked import chunked_kda_state_stats
from workbench.ops.state_norms.kda_naive import naive_kda_state_stats
from workbench.ops.state_norms.kda_readout import kda_readouts_from_chunk_states, naive_kda_readouts

CASES = [  # (B, T, Hk, Hv, K, V, C, with initial state)
    (1, 130, 2, 4, 16, 8, 64, False),
    (2, 37, 1, 2, 8, 8, 16, True),
    (1, 64, 2, 2, 16, 16, 64, False),
]


def _inputs(B, T, Hk, Hv, K, V, initial, seed=0):
    gen = torch.Generator().manual_seed(seed)
    k = torch.randn(B, T, Hk, K, generator=gen)
    v = torch.randn(B, T, Hv, V, generator=gen)
    g = -torch.rand(B, T, Hv, K, generator=gen) * torch.tensor([0.01, 0.5])[torch.randint(0, 2, (K,), generator=gen)]
    beta = torch.rand(B, T, Hv, generator=gen)
    state = torch.randn(B, Hv, K, V, generator=gen) if initial else None
    return k, v, g, beta, state


def _rel(a, b):
    ok = ~torch.isnan(b)
    assert torch.equal(ok, ~torch.isnan(a))  # NaN exactly before each key position
    return ((a - b)[ok].abs().max() / b[ok].abs().max()).item()


@pytest.mark.parametrize("B,T,Hk,Hv,K,V,C,initial", CASES,
                         ids=[f"B{c[0]}-T{c[1]}-Hk{c[2]}-Hv{c[3]}-K{c[4]}-V{c[5]}-C{c[6]}-h{int(c[7])}" for c in CASES])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["fp64", "fp32"])
def test_readouts_from_chunk_states_equal_the_scan(B, T, Hk, Hv, K, V, C, initial, dtype, tol):
    k, v, g, beta, state = _inputs(B, T, Hk, Hv, K, V, initial)
    pairs = torch.tensor([[0, 0], [T // 2, T // 2], [T - 1, 3]])
    positions = [0, C - 1, T - 1] if T > C else [0, T - 1]
    ref = naive_kda_readouts(k, v, g, beta, state, pairs, positions)
    chunked = chunked_kda_state_stats(k, k, v, g, beta, state, chunk_size=C, dtype=dtype, return_chunk_states=True)
    got = kda_readouts_from_chunk_states(k, v, g, chunked.chunk_states, chunked.v_new, pairs, positions,
                                         chunk_size=C, dtype=dtype)
    for name in ("recall_rel_err", "recall_cos", "recall_readout_norm"):
        assert _rel(got[name].double(), getattr(ref, name)) <= tol, name
    assert _rel(got["snapshot_states"].double(), ref.snapshot_states) <= tol
    assert math.isnan(ref.recall_cos[0, 1, T // 2 - 1, 0]) and not math.isnan(ref.recall_cos[0, 1, T // 2, 0])


def test_scan_agrees_with_the_kda_norm_reference():
    """The readout scan runs the same recurrence as naive_kda_state_stats: identical norms."""
    k, v, g, beta, state = _inputs(1, 40, 2, 4, 8, 8, True, seed=3)
    a = naive_kda_readouts(k, v, g, beta, state).state_norm
    b = naive_kda_state_stats(k, k, v, g, beta, state).state_norm
    torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_right_after_the_write_a_fresh_state_returns_the_value():
    """One token written with beta = 1 into a zero state reads back ||khat||^2 v: cos 1, and rel_err
    1 - s / (s + eps) = eps / (s + eps) with s = ||k||^2, since the kernel's L2 norm divides by sqrt(s + 1e-6)."""
    k, v, g, beta, _ = _inputs(1, 1, 1, 1, 8, 4, False, seed=5)
    stats = naive_kda_readouts(k, v, g, torch.ones_like(beta), None, torch.tensor([[0, 0]]))
    s = k.double().pow(2).sum()
    assert abs(stats.recall_rel_err.item() - 1e-6 / (s + 1e-6).item()) < 1e-12
    assert abs(stats.recall_cos.item() - 1) < 1e-12
