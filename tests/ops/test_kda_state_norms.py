"""Kimi Delta Attention (per-channel decay) state norms: chunked (fp32) against the fp64 token-by-token scan, against
transformers' own KDA kernels, and, with a decay equal on every channel, against the scalar-decay (Gated DeltaNet) ops.

Agreement criterion for a tensor a against reference b: max|a - b| / max|b| <= tol (norm-relative), tol = 1e-4 for
fp32 against fp64 and 1e-10 for fp64 against fp64.
"""

import pytest
import torch
from torch_kernels import reference_kernel

from workbench.ops.state_norms import chunked_state_stats, naive_state_stats
from workbench.ops.state_norms.kda_chunked import chunked_kda_state_stats, kda_state_norms_from_chunk_states
from workbench.ops.state_norms.kda_naive import naive_kda_state_stats

KIMI = "transformers.models.kimi_linear.modeling_kimi_linear"
chunk_kimi_delta_attention = reference_kernel(KIMI, "chunk_kimi_delta_attention")
recurrent_kimi_delta_attention = reference_kernel(KIMI, "recurrent_kimi_delta_attention")

TOL = 1e-4
FIELDS = ("state_norm", "o", "final_state")


def case_id(c):
    h0 = "-h0" if c["h0"] else ""
    return f"B{c['B']}-T{c['T']}-Hk{c['Hk']}-Hv{c['Hv']}-K{c['K']}-V{c['V']}-C{c['C']}-{c['kind']}{h0}"


def make_case(B, T, Hk, Hv, K, V, C, kind, h0, seed=0):
    """Random KDA inputs; `kind` picks a hard regime for the per-channel log decay g [B, T, Hv, K]."""
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, B, T, Hk, K, generator=gen)
    v = torch.randn(B, T, Hv, V, generator=gen)
    g = -torch.rand(B, T, Hv, K, generator=gen) * 0.5
    beta = torch.rand(B, T, Hv, generator=gen).sigmoid()
    if kind == "fast_decay":  # decay factor ~ exp(-20) ~ 2e-9 on every channel: forgets within one token
        g = -20.0 - torch.rand(B, T, Hv, K, generator=gen)
    elif kind == "slow_decay":  # half-lives of ~7,000 to ~70,000 tokens
        g = -1e-4 * torch.rand(B, T, Hv, K, generator=gen) - 1e-5
    elif kind == "mixed_decay":  # half the channels forget at once, half keep nearly everything
        g = torch.where(torch.arange(K) % 2 == 0, -20.0, -1e-4).expand(B, T, Hv, K).clone()
    state = torch.randn(B, Hv, K, V, generator=gen) if h0 else None
    return (q, k, v, g, beta), state


def rel_max(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


CASES = [
    dict(B=1, T=1, Hk=1, Hv=1, K=8, V=4, C=64, kind="random", h0=True),
    dict(B=1, T=63, Hk=2, Hv=4, K=16, V=8, C=64, kind="random", h0=False),
    dict(B=2, T=65, Hk=2, Hv=4, K=16, V=8, C=16, kind="random", h0=True),
    dict(B=1, T=130, Hk=2, Hv=4, K=16, V=8, C=32, kind="random", h0=True),
    dict(B=1, T=65, Hk=2, Hv=2, K=8, V=16, C=16, kind="fast_decay", h0=True),
    dict(B=1, T=130, Hk=1, Hv=3, K=16, V=8, C=32, kind="slow_decay", h0=True),
    dict(B=1, T=100, Hk=2, Hv=4, K=8, V=8, C=64, kind="slow_decay", h0=False),
    dict(B=1, T=70, Hk=1, Hv=2, K=8, V=8, C=16, kind="mixed_decay", h0=True),
]


@pytest.mark.parametrize("norms", ["identity", "scan"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_kda_chunked_matches_naive(case, norms):
    args, state = make_case(**case)
    ref = naive_kda_state_stats(*args, state)
    got = chunked_kda_state_stats(*args, state, chunk_size=case["C"], norms=norms)
    assert got.state_norm.dtype == torch.float32 and got.state_norm.shape == (case["B"], case["T"], case["Hv"])
    assert got.o.shape == args[2].shape and got.final_state.shape == (case["B"], case["Hv"], case["K"], case["V"])
    for name in FIELDS:
        assert rel_max(getattr(got, name), getattr(ref, name)) <= TOL, name


@pytest.mark.parametrize("norms", ["identity", "scan"])
@pytest.mark.parametrize("case", [CASES[3], CASES[7]], ids=case_id)
def test_kda_chunked_fp64_matches_naive_to_roundoff(case, norms):
    args, state = make_case(**case)
    ref = naive_kda_state_stats(*args, state)
    got = chunked_kda_state_stats(*args, state, chunk_size=case["C"], dtype=torch.float64, norms=norms)
    for name in FIELDS:
        assert rel_max(getattr(got, name), getattr(ref, name)) <= 1e-10, name


@pytest.mark.parametrize("norms", ["identity", "scan"])
@pytest.mark.parametrize("case", [CASES[2], CASES[4], CASES[7]], ids=case_id)
def test_kda_loop_free_path_from_chunk_states(case, norms):
    """Chunk-start states and v_new of the chunk loop (what fla's chunk_kda forward holds) give the same norms."""
    args, state = make_case(**case)
    loop = chunked_kda_state_stats(*args, state, chunk_size=case["C"], return_chunk_states=True)
    assert loop.chunk_states.shape == (case["B"], case["Hv"], -(-case["T"] // case["C"]), case["K"], case["V"])
    assert rel_max(loop.v_new, naive_kda_state_stats(*args, state).v_new) <= TOL
    got = kda_state_norms_from_chunk_states(args[1], args[3], loop.chunk_states, loop.v_new, chunk_size=case["C"],
                                            norms=norms)
    assert got.o is None
    assert rel_max(got.state_norm, naive_kda_state_stats(*args, state).state_norm) <= TOL


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[7]], ids=case_id)
def test_kda_matches_transformers_kimi_kernels(case):
    """transformers' Kimi-Linear kernels (torch fallbacks, one key head per value head) give the same o and state."""
    case = dict(case, Hk=case["Hv"])
    (q, k, v, g, beta), state = make_case(**case)
    ref = naive_kda_state_stats(q, k, v, g, beta, state)
    for kernel in (chunk_kimi_delta_attention, recurrent_kimi_delta_attention):
        o, final = kernel(q, k, v, g=g, beta=beta, initial_state=state, output_final_state=True,
                          use_qk_l2norm_in_kernel=True)
        assert rel_max(o, ref.o) <= TOL and rel_max(final, ref.final_state) <= TOL, kernel.__name__


@pytest.mark.parametrize("case", [CASES[3], CASES[5]], ids=case_id)
def test_kda_with_equal_channels_equals_scalar_decay_ops(case):
    """A per-channel decay equal on every channel is the scalar gated delta rule: KDA ops == Gated DeltaNet ops."""
    (q, k, v, g, beta), state = make_case(**case)
    g_scalar = g[..., 0]  # [B, T, Hv]
    g_channels = g_scalar[..., None].expand_as(g).contiguous()
    kda = naive_kda_state_stats(q, k, v, g_channels, beta, state)
    gdn = naive_state_stats(q, k, v, g_scalar, beta, state)
    for name in FIELDS:
        assert rel_max(getattr(kda, name), getattr(gdn, name)) <= 1e-12, name
    kda = chunked_kda_state_stats(q, k, v, g_channels, beta, state, chunk_size=case["C"])
    gdn = chunked_state_stats(q, k, v, g_scalar, beta, state, chunk_size=case["C"])
    for name in FIELDS:
        assert rel_max(getattr(kda, name), getattr(gdn, name)) <= 1e-5, name


def test_kda_norm_by_hand():
    """One head, K = 2, no L2 norm: token 0 writes k = e1 (beta 1, v = (3, 4)) into an empty state; later tokens
    write nothing (beta 0) and decay channel 1 by exp(-0.5) and channel 2 not at all. S_t = e^{-0.5 t} e1 v^T, so
    ||S_t|| = 5 e^{-0.5 t}: the second channel's slow decay must not leak into the first."""
    T = 6
    f64 = torch.float64
    k = torch.tensor([1.0, 0.0], dtype=f64).expand(1, T, 1, 2)
    v = torch.tensor([3.0, 4.0], dtype=f64).expand(1, T, 1, 2)
    g = torch.tensor([-0.5, 0.0], dtype=f64).expand(1, T, 1, 2)
    beta = torch.zeros(1, T, 1, dtype=f64)
    beta[0, 0] = 1.0
    expected = 5.0 * torch.exp(-0.5 * torch.arange(T, dtype=f64))
    for stats in (naive_kda_state_stats(k, k, v, g, beta, use_qk_l2norm=False),
                  chunked_kda_state_stats(k, k, v, g, beta, chunk_size=4, use_qk_l2norm=False, dtype=f64),
                  chunked_kda_state_stats(k, k, v, g, beta, chunk_size=4, use_qk_l2norm=False, dtype=f64,
                                          norms="scan")):
        torch.testing.assert_close(stats.state_norm[0, :, 0], expected, atol=1e-12, rtol=0)


def test_kda_rejects_a_scalar_gate():
    (q, k, v, g, beta), _ = make_case(1, 8, 2, 4, 4, 4, 4, "random", False)
    with pytest.raises(ValueError, match="per-channel g"):
        chunked_kda_state_stats(q, k, v, g[..., 0], beta)
    with pytest.raises(ValueError, match="multiple of Hk"):
        naive_kda_state_stats(q, k, v[:, :, :3], g[:, :, :3], beta[:, :, :3])
    with pytest.raises(ValueError, match="norms must be"):
        chunked_kda_state_stats(q, k, v, g, beta, norms="gram")
