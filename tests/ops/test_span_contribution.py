"""DeltaNet span contributions: the gathered fp32 version against the fp64 explicit sum, for the scalar (Gated DeltaNet)
and per-channel (Kimi Delta Attention) decay, from the layer's inputs or from v_new (+ o) as fla hands them over.

Agreement criterion: the vectors o, parts and rest (units of v) are compared norm-relative to the scale of what is
decomposed, max|a - b| / max|o_ref| <= 1e-4 (a part written long ago under fast decay is ~1e-200 in fp64 and 0 in
fp32: relative to itself that is noise, relative to o_t it is exact); the dimensionless norm_ratio and projection
elementwise with absolute tolerance 1e-4 (o_t is never near 0 in these random cases).
"""

import math

import pytest
import torch

from workbench.ops.span_contribution import cumulative_log_decay_at, naive_span_contributions, span_contributions
from workbench.ops.state_norms.kda_naive import naive_kda_state_stats

TOL = 1e-4


def case_id(c):
    h0 = "-h0" if c["h0"] else ""
    return f"B{c['B']}-T{c['T']}-Hk{c['Hk']}-Hv{c['Hv']}-K{c['K']}-V{c['V']}-C{c['C']}-{c['gate']}-{c['kind']}{h0}"


def make_case(B, T, Hk, Hv, K, V, C, gate, kind, h0, seed=0):
    """Random inputs; gate "scalar" gives g [B, T, Hv], "channel" g [B, T, Hv, K]; `kind` a decay regime."""
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, B, T, Hk, K, generator=gen)
    v = torch.randn(B, T, Hv, V, generator=gen)
    g = -torch.rand(B, T, Hv, K, generator=gen) * 0.5
    beta = torch.rand(B, T, Hv, generator=gen).sigmoid()
    if kind == "fast_decay":
        g = -20.0 - torch.rand(B, T, Hv, K, generator=gen)
    elif kind == "slow_decay":
        g = -1e-4 * torch.rand(B, T, Hv, K, generator=gen) - 1e-5
    if gate == "scalar":
        g = g[..., 0].contiguous()
    state = torch.randn(B, Hv, K, V, generator=gen) if h0 else None
    return (q, k, v, g, beta), state


def request(T):
    """Disjoint spans (one empty, one at token 0, one that ends after some query rows) and query rows around them."""
    spans = [("first", 0, 1), ("needle", T // 3, T // 3 + 5), ("empty", 4, 4), ("tail", T - 3, T)]
    return torch.tensor(sorted({0, T // 3 + 2, T // 2, T - 1})), spans


def assert_matches(got, ref, tol=TOL):
    scale = ref.o.abs().max()
    assert torch.equal(got.query_positions, ref.query_positions)
    vectors = [("o", got.o, ref.o), ("rest", got.rest, ref.rest)]
    vectors += [(f"part {n}", got.parts[n], ref.parts[n]) for n in ref.parts]
    for name, a, b in vectors:
        assert a.shape == b.shape and (a.double() - b).abs().max() / scale <= tol, name
    ratios = [("rest ratio", got.rest_norm_ratio, ref.rest_norm_ratio),
              ("rest proj", got.rest_projection, ref.rest_projection)]
    ratios += [(f"ratio {n}", got.norm_ratio[n], ref.norm_ratio[n]) for n in ref.parts]
    ratios += [(f"proj {n}", got.projection[n], ref.projection[n]) for n in ref.parts]
    for name, a, b in ratios:
        assert (a.double() - b).abs().max() <= tol, name


CASES = [
    dict(B=1, T=63, Hk=2, Hv=4, K=16, V=8, C=64, gate="scalar", kind="random", h0=False),
    dict(B=2, T=65, Hk=2, Hv=4, K=16, V=8, C=16, gate="scalar", kind="random", h0=True),
    dict(B=1, T=130, Hk=1, Hv=2, K=8, V=16, C=32, gate="scalar", kind="fast_decay", h0=True),
    dict(B=1, T=100, Hk=1, Hv=3, K=16, V=8, C=64, gate="scalar", kind="slow_decay", h0=True),
    dict(B=2, T=65, Hk=2, Hv=4, K=16, V=8, C=16, gate="channel", kind="random", h0=True),
    dict(B=1, T=130, Hk=1, Hv=2, K=8, V=16, C=32, gate="channel", kind="fast_decay", h0=True),
    dict(B=1, T=100, Hk=1, Hv=3, K=16, V=8, C=64, gate="channel", kind="slow_decay", h0=False),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_span_contributions_match_naive(case):
    (q, k, v, g, beta), state = make_case(**case)
    qpos, spans = request(case["T"])
    ref = naive_span_contributions(q, k, v, g, beta, qpos, spans, state)
    got = span_contributions(q, k, g, qpos, spans, v=v, beta=beta, initial_state=state, chunk_size=case["C"])
    assert got.o.dtype == torch.float32 and got.o.shape == (case["B"], len(qpos), case["Hv"], case["V"])
    assert got.norm_ratio["needle"].shape == (case["B"], len(qpos), case["Hv"])
    assert_matches(got, ref)


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[4]], ids=case_id)
def test_span_contributions_from_fla_v_new(case):
    """The capture path: v_new (and o) as fla's chunk kernel returns them; without o, o_t is rebuilt exactly."""
    (q, k, v, g, beta), state = make_case(**case)
    qpos, spans = request(case["T"])
    ref = naive_span_contributions(q, k, v, g, beta, qpos, spans, state)
    g_channels = g if g.dim() == 4 else g[..., None].expand(*g.shape, case["K"])
    scan = naive_kda_state_stats(q, k, v, g_channels, beta, state)
    v_new, o = scan.v_new.float(), scan.o.float()
    assert_matches(span_contributions(q, k, g, qpos, spans, v_new=v_new, o=o, chunk_size=case["C"]), ref)
    rebuilt = span_contributions(q, k, g, qpos, spans, v_new=v_new, initial_state=state, chunk_size=case["C"])
    assert_matches(rebuilt, ref)


@pytest.mark.parametrize("case", [CASES[1], CASES[5]], ids=case_id)
def test_parts_and_rest_add_up_to_the_output(case):
    """Disjoint spans: the explicit parts plus the explicit rest (initial state included) give the scan's o_t,
    and the projections sum to 1."""
    (q, k, v, g, beta), state = make_case(**case)
    qpos, spans = request(case["T"])
    ref = naive_span_contributions(q, k, v, g, beta, qpos, spans, state)
    total = sum(ref.parts.values()) + ref.rest
    assert (total - ref.o).abs().max() <= 1e-12 * ref.o.abs().max()
    proj = sum(ref.projection.values()) + ref.rest_projection
    torch.testing.assert_close(proj, torch.ones_like(proj), atol=1e-12, rtol=0)


@pytest.mark.parametrize("gate", ["scalar", "channel"])
def test_one_span_over_everything_is_the_kernel_output(gate):
    """With no initial state, the span [0, T) is all of o_t: part == o (the scan's output), rest == 0, ratio 1."""
    case = dict(B=1, T=70, Hk=1, Hv=2, K=8, V=8, C=16, gate=gate, kind="random", h0=False)
    (q, k, v, g, beta), _ = make_case(**case)
    qpos, spans = torch.tensor([0, 33, 69]), [("all", 0, 70)]
    ref = naive_span_contributions(q, k, v, g, beta, qpos, spans)
    assert (ref.parts["all"] - ref.o).abs().max() <= 1e-12 * ref.o.abs().max()
    got = span_contributions(q, k, g, qpos, spans, v=v, beta=beta, chunk_size=16)
    assert (got.parts["all"].double() - ref.o).abs().max() <= TOL * ref.o.abs().max()
    assert got.rest.abs().max() <= TOL * ref.o.abs().max()
    torch.testing.assert_close(got.norm_ratio["all"], torch.ones_like(got.norm_ratio["all"]), atol=TOL, rtol=0)


def test_overlapping_spans_leave_the_union_to_the_rest():
    """Overlapping spans each get their full part; the rest is o_t minus the part of their union (not of their sum)."""
    (q, k, v, g, beta), state = make_case(1, 40, 1, 2, 8, 4, 16, "channel", "random", True)
    qpos, spans = torch.tensor([25, 39]), [("a", 10, 30), ("b", 20, 35), ("inside_a", 12, 14)]
    ref = naive_span_contributions(q, k, v, g, beta, qpos, spans, state)
    assert_matches(span_contributions(q, k, g, qpos, spans, v=v, beta=beta, initial_state=state, chunk_size=16), ref)
    union = naive_span_contributions(q, k, v, g, beta, qpos, [("a_or_b", 10, 35)], state)
    assert (ref.rest - union.rest).abs().max() <= 1e-12 * ref.o.abs().max()


def test_cumulative_decay_keeps_short_differences_exact_after_many_tokens():
    """After 50,000 tokens of g ~ -20.3 (c ~ -1e6) a plain fp32 cumsum differences neighbours to ~0.06 (a 6% error
    in exp(c_t - c_j)); the two-level sum matches the fp64 cumsum of the same fp32 g to 1e-9 there."""
    T = 50_000
    gen = torch.Generator().manual_seed(3)
    g = -20.0 - 0.6 * torch.rand(1, T, 1, generator=gen)
    pos = torch.tensor([0, 777, 49_990, 49_999])
    c = cumulative_log_decay_at(g, pos)
    exact = g.double().cumsum(1)[:, pos]
    assert c.dtype == torch.float64 and c.shape == (1, 4, 1)
    assert (c - exact).abs().max() <= 1e-9 * exact.abs().max()
    assert abs((c[0, 3] - c[0, 2]) - (exact[0, 3] - exact[0, 2])).item() <= 1e-9
    plain = g.cumsum(1)[0, pos, 0].double()
    assert abs((plain[3] - plain[2]) - (exact[0, 3, 0] - exact[0, 2, 0])).item() > 1e-3  # why fp32 is not enough


def test_bad_requests_raise():
    (q, k, v, g, beta), _ = make_case(1, 20, 1, 2, 4, 4, 8, "scalar", "random", False)
    qpos, spans = request(20)
    with pytest.raises(ValueError, match="either v and beta"):
        span_contributions(q, k, g, qpos, spans, v=v)
    with pytest.raises(ValueError, match="g must be"):
        span_contributions(q, k, g[..., None].expand(-1, -1, -1, 3), qpos, spans, v=v, beta=beta)
    with pytest.raises(ValueError, match="sorted and unique"):
        span_contributions(q, k, g, torch.tensor([5, 2]), spans, v=v, beta=beta)
    with pytest.raises(ValueError, match="not inside"):
        naive_span_contributions(q, k, v, g, beta, qpos, [("late", 10, 21)])
    assert math.isnan(naive_span_contributions(q, k, v * 0, g, beta, qpos, spans).projection["needle"][0, 0, 0])
