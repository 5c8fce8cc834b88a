"""Gated DeltaNet state statistics: chunked (fp32) against the fp64 token-by-token scan, against transformers'
own chunk kernel, and against closed-form hand-built cases.

Agreement criterion for a tensor a against reference b: max|a - b| / max|b| <= tol (norm-relative, NaNs must
sit at the same places and are skipped). Dimensionless recall metrics (rel_err, cos) are compared elementwise
with an absolute tolerance; cos only where the reference readout is not negligible (||r|| > 1e-3 ||v||),
since the direction of a vanished readout is round-off.
"""

import math

import pytest
import torch
from torch_kernels import reference_kernel

from workbench.ops.state_norms import (
    chunked_state_stats,
    gate_stats,
    naive_state_stats,
    state_norms_from_chunk_states,
    state_spectrum,
)

torch_chunk_gated_delta_rule = reference_kernel("transformers.models.qwen3_next.modeling_qwen3_next",
                                                "torch_chunk_gated_delta_rule")
TOL = 1e-4
DENSE_FIELDS = ("state_norm", "o", "final_state", "recall_readout_norm", "snapshot_states", "snapshot_top_sv")


def case_id(c):
    h0 = "-h0" if c["h0"] else ""
    return f"B{c['B']}-T{c['T']}-Hk{c['Hk']}-Hv{c['Hv']}-K{c['K']}-V{c['V']}-C{c['C']}-{c['kind']}{h0}"


def make_case(B, T, Hk, Hv, K, V, C, kind, h0, seed=0):
    """Random inputs in the kernel's conventions; `kind` picks a hard regime for g, beta or the keys."""
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, B, T, Hk, K, generator=gen)
    v = torch.randn(B, T, Hv, V, generator=gen)
    g = -torch.rand(B, T, Hv, generator=gen) * 0.5
    beta = torch.rand(B, T, Hv, generator=gen).sigmoid()
    if kind == "repeat_keys":  # three distinct keys written over and over, almost full overwrite
        k = k[:, torch.arange(T) % 3]
        beta = torch.full_like(beta, 0.999)
    elif kind == "fast_decay":  # decay factor exp(-20) ~ 2e-9: the state forgets within one token
        g = torch.full_like(g, -20.0)
    elif kind == "slow_decay":  # half-life ~ 6931 tokens
        g = torch.full_like(g, -1e-4)
    state = torch.randn(B, Hv, K, V, generator=gen) if h0 else None
    pairs = torch.tensor([[0, 0], [T // 2, T // 2], [T - 1, 0]])
    snaps = sorted({0, T // 2, T - 1})
    return (q, k, v, g, beta), state, pairs, snaps


def rel_max(a, b):
    a, b = a.double(), b.double()
    assert torch.equal(a.isnan(), b.isnan()), "NaN pattern differs"
    ok = ~b.isnan()
    return ((a - b)[ok].abs().max() / b[ok].abs().max().clamp_min(1e-300)).item()


def assert_matches_reference(got, ref, v, pairs, tol=TOL):
    for name in DENSE_FIELDS:
        if getattr(got, name) is not None:
            assert rel_max(getattr(got, name), getattr(ref, name)) <= tol, name
    assert rel_max(got.snapshot_eff_rank, ref.snapshot_eff_rank) <= tol
    assert torch.equal(got.recall_rel_err.isnan(), ref.recall_rel_err.isnan())
    assert (got.recall_rel_err.double() - ref.recall_rel_err).nan_to_num().abs().max() <= tol
    v_norm = v.double()[:, pairs[:, 1]].norm(dim=-1)[:, :, None, :]  # [B, P, 1, Hv]
    visible = ref.recall_readout_norm > 1e-3 * v_norm
    assert (got.recall_cos.double() - ref.recall_cos)[visible].abs().max() <= tol


CASES = [
    dict(B=1, T=1, Hk=1, Hv=1, K=8, V=4, C=64, kind="random", h0=True),
    dict(B=1, T=63, Hk=2, Hv=4, K=16, V=8, C=64, kind="random", h0=False),
    dict(B=2, T=65, Hk=2, Hv=4, K=16, V=8, C=64, kind="random", h0=True),
    dict(B=1, T=130, Hk=2, Hv=4, K=16, V=8, C=64, kind="random", h0=True),
    dict(B=1, T=130, Hk=1, Hv=2, K=16, V=8, C=16, kind="repeat_keys", h0=True),
    dict(B=1, T=65, Hk=2, Hv=2, K=8, V=16, C=16, kind="fast_decay", h0=True),
    dict(B=1, T=130, Hk=1, Hv=3, K=16, V=8, C=32, kind="slow_decay", h0=True),
    dict(B=1, T=100, Hk=2, Hv=4, K=8, V=8, C=64, kind="slow_decay", h0=False),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_chunked_matches_naive(case):
    (q, k, v, g, beta), state, pairs, snaps = make_case(**case)
    ref = naive_state_stats(q, k, v, g, beta, state, pairs, snaps)
    got = chunked_state_stats(q, k, v, g, beta, state, pairs, snaps, chunk_size=case["C"])
    assert got.state_norm.dtype == torch.float32 and got.state_norm.shape == (case["B"], case["T"], case["Hv"])
    assert got.recall_rel_err.shape == (case["B"], len(pairs), case["T"], case["Hv"])
    assert_matches_reference(got, ref, v, pairs)


@pytest.mark.parametrize("case", [CASES[3], CASES[4]], ids=case_id)
def test_chunked_fp64_matches_naive_to_roundoff(case):
    """In fp64 the chunk identity is exact up to round-off: a much tighter bound than the fp32 one."""
    (q, k, v, g, beta), state, pairs, snaps = make_case(**case)
    ref = naive_state_stats(q, k, v, g, beta, state, pairs, snaps)
    got = chunked_state_stats(q, k, v, g, beta, state, pairs, snaps, chunk_size=case["C"], dtype=torch.float64)
    assert_matches_reference(got, ref, v, pairs, tol=1e-10)


@pytest.mark.parametrize("case", CASES[1:5], ids=case_id)
def test_chunked_output_equals_transformers_kernel(case):
    (q, k, v, g, beta), state, _, _ = make_case(**case)
    groups = case["Hv"] // case["Hk"]  # value head h reads key head h // groups; transformers before 5.25 expands
    qe, ke = q.repeat_interleave(groups, 2), k.repeat_interleave(groups, 2)  # the keys so before its kernel
    o_ref, state_ref = torch_chunk_gated_delta_rule(
        qe, ke, v, g, beta, chunk_size=case["C"], initial_state=state,
        output_final_state=True, use_qk_l2norm_in_kernel=True,
    )
    got = chunked_state_stats(q, k, v, g, beta, state, chunk_size=case["C"])
    assert rel_max(got.o, o_ref) <= 1e-6
    assert rel_max(got.final_state, state_ref) <= 1e-6


@pytest.mark.parametrize("case", [CASES[2], CASES[4], CASES[5]], ids=case_id)
def test_loop_free_path_from_chunk_states(case):
    """Feed the chunk-start states and v_new of the chunk loop (as fla would) to the loop-free path."""
    (q, k, v, g, beta), state, pairs, snaps = make_case(**case)
    loop = chunked_state_stats(q, k, v, g, beta, state, chunk_size=case["C"], return_chunk_states=True)
    n_chunks = -(-case["T"] // case["C"])
    assert loop.chunk_states.shape == (case["B"], case["Hv"], n_chunks, case["K"], case["V"])
    assert loop.v_new.shape == v.shape
    got = state_norms_from_chunk_states(
        k, g, loop.chunk_states, loop.v_new, v, pairs, snaps, chunk_size=case["C"]
    )
    assert got.o is None and got.final_state is None
    assert_matches_reference(got, naive_state_stats(q, k, v, g, beta, state, pairs, snaps), v, pairs)


def one_head(keys, values, g, beta):
    """[T, 2] keys/values, [T] g/beta -> kernel-argument shapes for B = Hk = Hv = 1."""
    q = torch.randn(1, len(g), 1, 2, generator=torch.Generator().manual_seed(1))
    return q, keys[None, :, None], values[None, :, None], g[None, :, None], beta[None, :, None]


@pytest.mark.parametrize("impl", ["naive", "chunked"])
def test_recall_decays_under_overwrites_in_closed_form(impl):
    """Orthonormal keys, no decay, no L2 norm (so the keys are exactly unit). Token 0 writes (e1, v1 = e1) with
    beta = 1: S = e1 v1^T. Tokens 1..n write key e1 with value w = e2 and strength b. With r = S^T e1,
    delta = b (w - r) gives r_n = (1 - b) r_{n-1} + b w, so with m = (1 - b)^n:
        r_n = m v1 + (1 - m) w,   rel_err = ||r_n - v1|| = (1 - m) ||w - v1|| = sqrt(2) (1 - m),
        cos = m / sqrt(m^2 + (1 - m)^2),   ||S_n||_F = ||e1 r_n^T|| = ||r_n|| = sqrt(m^2 + (1 - m)^2).
    rel_err rises strictly towards sqrt(2). Chunk size 4 makes the 12 tokens cross chunk boundaries."""
    T, b = 12, 0.3
    e1, e2 = torch.eye(2, dtype=torch.float64)
    keys = e1.expand(T, 2)
    values = torch.cat([e1[None], e2.expand(T - 1, 2)])
    beta = torch.full((T,), b, dtype=torch.float64)
    beta[0] = 1.0
    args = one_head(keys, values, torch.zeros(T, dtype=torch.float64), beta)
    pairs = torch.tensor([[0, 0]])
    if impl == "naive":
        stats, tol = naive_state_stats(*args, recall_pairs=pairs, use_qk_l2norm=False), 1e-12
    else:
        stats, tol = chunked_state_stats(*args, recall_pairs=pairs, chunk_size=4, use_qk_l2norm=False), 1e-5
    m = (1 - b) ** torch.arange(T, dtype=torch.float64)
    rel_err = stats.recall_rel_err[0, 0, :, 0].double()
    torch.testing.assert_close(rel_err, math.sqrt(2) * (1 - m), atol=tol, rtol=0)
    readout_norm = (m**2 + (1 - m) ** 2).sqrt()
    torch.testing.assert_close(stats.recall_cos[0, 0, :, 0].double(), m / readout_norm, atol=tol, rtol=0)
    torch.testing.assert_close(stats.state_norm[0, :, 0].double(), readout_norm, atol=tol, rtol=0)
    assert (rel_err.diff() > 0).all()


@pytest.mark.parametrize("impl", ["naive", "chunked"])
def test_recall_under_pure_decay(impl):
    """Token 0 writes (e1, v1) with beta = 1 into an empty state; later tokens write nothing (beta = 0) and
    only decay. Then S_t = prod_{s=1..t} exp(g_s) e1 v1^T: readout = prod * v1, rel_err = 1 - prod, cos = 1,
    ||S_t|| = prod * ||v1||. (g_0 multiplies the empty state, so it does not enter.)"""
    T = 10
    gen = torch.Generator().manual_seed(2)
    g = -0.3 * torch.rand(T, generator=gen, dtype=torch.float64)
    v1 = torch.tensor([0.6, -1.7], dtype=torch.float64)
    keys = torch.eye(2, dtype=torch.float64)[0].expand(T, 2)
    values = torch.randn(T, 2, generator=gen, dtype=torch.float64)
    values[0] = v1
    beta = torch.zeros(T, dtype=torch.float64)
    beta[0] = 1.0
    args = one_head(keys, values, g, beta)
    pairs = torch.tensor([[0, 0]])
    if impl == "naive":
        stats, tol = naive_state_stats(*args, recall_pairs=pairs, use_qk_l2norm=False), 1e-12
    else:
        stats, tol = chunked_state_stats(*args, recall_pairs=pairs, chunk_size=4, use_qk_l2norm=False), 1e-6
    prod = torch.cat([torch.zeros(1, dtype=torch.float64), g[1:]]).cumsum(0).exp()
    torch.testing.assert_close(stats.recall_rel_err[0, 0, :, 0].double(), 1 - prod, atol=tol, rtol=0)
    ones = torch.ones(T, dtype=torch.float64)
    torch.testing.assert_close(stats.recall_cos[0, 0, :, 0].double(), ones, atol=tol, rtol=0)
    torch.testing.assert_close(stats.state_norm[0, :, 0].double(), prod * v1.norm(), atol=tol, rtol=0)


def test_recall_is_nan_before_the_key_is_written():
    (q, k, v, g, beta), _, _, _ = make_case(1, 20, 1, 2, 8, 4, 8, "random", False)
    pairs = torch.tensor([[5, 5], [12, 3]])
    for stats in (naive_state_stats(q, k, v, g, beta, recall_pairs=pairs),
                  chunked_state_stats(q, k, v, g, beta, recall_pairs=pairs, chunk_size=8)):
        for p, key_pos in enumerate(pairs[:, 0].tolist()):
            assert stats.recall_rel_err[0, p, :key_pos].isnan().all()
            assert not stats.recall_rel_err[0, p, key_pos:].isnan().any()


def test_gate_stats_half_life():
    """half-life h solves exp(g h) = 1/2: g = -ln2 -> 1 token, -ln2/10 -> 10 tokens, -1e-3 -> 693.147 tokens."""
    g = torch.tensor([0.0, -math.log(2), -math.log(2) / 10, -1e-3], dtype=torch.float64)
    beta = torch.tensor([0.1, 0.5, 0.9, 0.99], dtype=torch.float64)
    stats = gate_stats(g, beta)
    assert stats.half_life[0] == math.inf
    f64 = torch.float64
    torch.testing.assert_close(stats.half_life[1:], torch.tensor([1.0, 10.0, 693.1471805599453], dtype=f64))
    torch.testing.assert_close(stats.decay, torch.tensor([1.0, 0.5, 0.9330329915368074, 0.999000499833375], dtype=f64))
    assert torch.equal(stats.beta, beta)


def test_state_spectrum_by_hand():
    """diag(3, 1): p = (3/4, 1/4), effective rank exp(-(3/4 ln 3/4 + 1/4 ln 1/4)); an empty state has rank 0."""
    f64 = torch.float64
    states = torch.stack([torch.diag(torch.tensor([3.0, 1.0], dtype=f64)), torch.zeros(2, 2, dtype=f64)])
    eff_rank, top = state_spectrum(states)
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    torch.testing.assert_close(eff_rank, torch.tensor([expected, 0.0], dtype=f64))
    torch.testing.assert_close(top, torch.tensor([3.0, 0.0], dtype=f64))
