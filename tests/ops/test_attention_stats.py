"""Blockwise attention statistics (fp32) against the fp64 eager reference, plus closed-form cases."""

import math

import pytest
import torch

from workbench.ops.attention_stats import (
    blockwise_attention_stats,
    causal_attention_weights,
    naive_attention_stats,
    stats_from_weights,
)

# (B, T, Hq, Hkv, D, block_size): block sizes that do not divide T, GQA and MHA, one block and many.
CASES = [
    (1, 300, 4, 2, 16, 64),
    (2, 257, 4, 4, 8, 100),
    (1, 130, 8, 1, 16, 7),
    (1, 64, 2, 2, 8, 4096),
    (2, 301, 6, 3, 32, 1),
]


def case_id(case):
    b, t, hq, hkv, d, blk = case
    return f"B{b}-T{t}-Hq{hq}-Hkv{hkv}-D{d}-blk{blk}"


def random_qk(b, t, hq, hkv, d, seed=0):
    """Random q/k with peaky logits (std ~2), so top-k weights are distinct and far from uniform."""
    gen = torch.Generator().manual_seed(seed)
    query = 2.0 * torch.randn(b, hq, t, d, generator=gen)
    key = torch.randn(b, hkv, t, d, generator=gen)
    return query, key


def spans_for(t):
    return [("needle", t // 3, t // 3 + 5), ("all", 0, t), ("tail", t - 3, t), ("empty", 4, 4), ("first", 0, 1)]


def assert_stats_close(fast, ref, atol=1e-5):
    """Probabilities and entropy to atol; mean distance (tokens, up to T) to relative atol; top-k positions equal."""
    for name in ("entropy", "sink_mass", "topk_weight"):
        torch.testing.assert_close(getattr(fast, name).double(), getattr(ref, name), atol=atol, rtol=0, msg=name)
    torch.testing.assert_close(fast.mean_distance.double(), ref.mean_distance, atol=atol, rtol=atol)
    assert fast.span_mass.keys() == ref.span_mass.keys()
    for name in ref.span_mass:
        torch.testing.assert_close(fast.span_mass[name].double(), ref.span_mass[name], atol=atol, rtol=0, msg=name)
    assert torch.equal(fast.topk_pos, ref.topk_pos)
    assert torch.equal(fast.query_positions, ref.query_positions)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_blockwise_matches_naive(case):
    b, t, hq, hkv, d, blk = case
    query, key = random_qk(b, t, hq, hkv, d)
    qpos = torch.tensor(sorted({0, 1, 2, t // 2, blk - 1, blk, t - 2, t - 1} & set(range(t))))
    args = (query, key, qpos, d**-0.5, spans_for(t), 6)
    ref = naive_attention_stats(*args)
    fast = blockwise_attention_stats(*args, block_size=blk)
    assert fast.entropy.shape == (b, len(qpos), hq) and fast.topk_pos.shape == (b, len(qpos), hq, 6)
    assert fast.entropy.dtype == torch.float32 and fast.topk_pos.dtype == torch.int64
    assert_stats_close(fast, ref)


def test_blockwise_fp64_is_exact():
    query, key = random_qk(1, 200, 4, 2, 8)
    args = (query, key, torch.tensor([0, 99, 199]), 8**-0.5, spans_for(200), 4)
    fast = blockwise_attention_stats(*args, block_size=33, compute_dtype=torch.float64)
    assert_stats_close(fast, naive_attention_stats(*args), atol=1e-12)


def test_long_context_few_rows():
    """T = 20000 with 1024-key blocks: only the 4 selected rows are ever scored."""
    t = 20000
    query, key = random_qk(1, t, 2, 2, 8, seed=1)
    args = (query, key, torch.tensor([0, 1023, 12345, t - 1]), 8**-0.5, [("needle", 5000, 5010)], 8)
    assert_stats_close(blockwise_attention_stats(*args, block_size=1024), naive_attention_stats(*args))


def needle_qk(t, needle_start, n, logit, scaling):
    """Every query is e0; needle keys are (logit / scaling) e0, other keys e1: logits exactly `logit` on the
    needle and 0 elsewhere."""
    query = torch.zeros(1, 2, t, 4)
    query[..., 0] = 1.0
    key = torch.zeros(1, 1, t, 4)
    key[..., 1] = 1.0
    key[:, :, needle_start : needle_start + n] = torch.tensor([logit / scaling, 0.0, 0.0, 0.0])
    return query, key


@pytest.mark.parametrize("stats_fn", [naive_attention_stats, blockwise_attention_stats], ids=["naive", "blockwise"])
def test_needle_mass_closed_form(stats_fn):
    t, start, n, logit, scaling = 400, 100, 6, 3.0, 0.25
    query, key = needle_qk(t, start, n, logit, scaling)
    qpos = torch.tensor([start + n - 1, 200, t - 1])
    stats = stats_fn(query, key, qpos, scaling, [("needle", start, start + n)], top_k=n + 1)
    others = qpos.double() + 1 - n
    expected = n * math.exp(logit) / (n * math.exp(logit) + others)  # [Q]
    mass = stats.span_mass["needle"].double()  # [1, Q, 2]
    torch.testing.assert_close(mass, expected[None, :, None].expand_as(mass), atol=1e-6, rtol=0)
    assert set(stats.topk_pos[0, 1, 0, :n].tolist()) == set(range(start, start + n))
    torch.testing.assert_close(stats.topk_weight[0, 1, 0, n].double(), 1 / (n * math.exp(logit) + others[1]))


@pytest.mark.parametrize("stats_fn", [naive_attention_stats, blockwise_attention_stats], ids=["naive", "blockwise"])
def test_uniform_rows(stats_fn):
    """Zero keys give a uniform row: entropy log(q+1), mean distance q/2, sink 1/(q+1)."""
    t = 50
    query, key = torch.randn(1, 2, t, 4), torch.zeros(1, 2, t, 4)
    qpos = torch.tensor([0, 1, 7, 49])
    stats = stats_fn(query, key, qpos, 0.5, [("head", 0, 5)], top_k=3)
    q = qpos.double()[None, :, None].expand(1, 4, 2)
    torch.testing.assert_close(stats.entropy.double(), (q + 1).log(), atol=1e-6, rtol=0)
    torch.testing.assert_close(stats.mean_distance.double(), q / 2, atol=1e-5, rtol=0)
    torch.testing.assert_close(stats.sink_mass.double(), 1 / (q + 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(stats.span_mass["head"].double(), (q + 1).clamp(max=5) / (q + 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("stats_fn", [naive_attention_stats, blockwise_attention_stats], ids=["naive", "blockwise"])
def test_topk_pads_short_rows(stats_fn):
    query, key = random_qk(1, 10, 2, 1, 4)
    stats = stats_fn(query, key, torch.tensor([0, 2, 9]), 0.5, [], top_k=12)
    pos, weight = stats.topk_pos[0, :, 0], stats.topk_weight[0, :, 0]  # [Q, 12]
    assert pos[0].tolist() == [0] + [-1] * 11
    assert sorted(pos[1, :3].tolist()) == [0, 1, 2] and (pos[1, 3:] == -1).all()
    assert sorted(pos[2, :10].tolist()) == list(range(10)) and (pos[2, 10:] == -1).all()
    assert (weight[pos == -1] == 0).all()
    torch.testing.assert_close(weight.sum(-1).double(), torch.ones(3, dtype=torch.float64))
    assert (weight[:, :-1] >= weight[:, 1:]).all()  # heaviest first


def test_stats_from_full_weight_map():
    """The full [B, H, T, T] map (what eager output_attentions returns) gives the same rows as [B, H, Q, T]."""
    query, key = random_qk(1, 40, 4, 2, 8)
    qpos = torch.tensor([3, 20, 39])
    full = causal_attention_weights(query, key, torch.arange(40), 8**-0.5).float()  # [1, 4, 40, 40]
    from_full = stats_from_weights(full, qpos, spans_for(40), 3)
    assert_stats_close(from_full, naive_attention_stats(query, key, qpos, 8**-0.5, spans_for(40), 3))
    with pytest.raises(ValueError, match="causal mask"):
        stats_from_weights(torch.full((1, 4, 40, 40), 1 / 40), qpos, [], 3)


@pytest.mark.parametrize(
    "qpos, spans, match",
    [
        ([3, 3], [], "sorted and unique"),
        ([5, 2], [], "sorted and unique"),
        ([0, 40], [], "lie in"),
        ([0], [("a", 5, 41)], "inside"),
        ([0], [("a", 1, 2), ("a", 3, 4)], "unique"),
    ],
    ids=["duplicate", "unsorted", "past-end", "span-past-end", "span-names"],
)
def test_rejects_bad_requests(qpos, spans, match):
    query, key = random_qk(1, 40, 2, 1, 4)
    with pytest.raises(ValueError, match=match):
        blockwise_attention_stats(query, key, torch.tensor(qpos), 0.5, spans, 2)
