"""State retention relative to what was written (ops.state_norms.retention_metrics): a hand-computed case where the
answer is known in closed form, and the chunked path against the fp64 scan (max abs difference <= 1e-4)."""

import math

import pytest
import torch

from workbench.ops.state_norms import chunked_state_stats, naive_state_stats


def _orthogonal_writes(beta0: float):
    """Keys e_0..e_3 (orthogonal, unit), decay exp(g) = 1/2 every token, beta 1 after t = 0. The readout of key e_0
    is r_t = 2^-t beta0 v_0: the write at t = 0 stores beta0 v_0 and later writes never touch e_0."""
    B, T, H, K, V = 1, 4, 1, 4, 3
    q = torch.randn(B, T, H, K, dtype=torch.float64)
    k = torch.eye(K, dtype=torch.float64)[None, :, None, :]  # [1, 4, 1, 4]
    v = torch.randn(B, T, H, V, dtype=torch.float64)
    g = torch.full((B, T, H), -math.log(2.0), dtype=torch.float64)
    beta = torch.ones(B, T, H, dtype=torch.float64)
    beta[:, 0] = beta0
    return q, k, v, g, beta


@pytest.mark.parametrize("beta0", [1.0, 0.5, 0.1])
def test_retention_of_an_untouched_key_is_its_decay_whatever_the_write_strength(beta0):
    stats = naive_state_stats(*_orthogonal_writes(beta0), recall_pairs=[[0, 0]])
    expected = torch.tensor([0.5 ** t for t in range(4)], dtype=torch.float64)
    torch.testing.assert_close(stats.recall_retention_ratio[0, 0, :, 0], expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(stats.recall_retention_cos[0, 0, :, 0], torch.ones(4, dtype=torch.float64))
    # rel_err against the raw value mixes in the write strength: 1 - beta0 right at the key
    assert stats.recall_rel_err[0, 0, 0, 0].item() == pytest.approx(1 - beta0, abs=1e-5)  # kernel l2norm eps


def test_retention_is_nan_before_the_key_and_one_at_it():
    q, k, v, g, beta = _orthogonal_writes(1.0)
    stats = naive_state_stats(q, k, v, g, beta, recall_pairs=[[2, 2]])
    assert stats.recall_retention_ratio[0, 0, :2].isnan().all()
    assert stats.recall_retention_ratio[0, 0, 2:, 0].tolist() == pytest.approx([1.0, 0.5])


@pytest.mark.parametrize("T", [70, 130], ids=lambda t: f"T{t}")
def test_chunked_retention_matches_the_fp64_scan(T):
    gen = torch.Generator().manual_seed(T)
    B, Hk, Hv, K, V = 1, 2, 4, 16, 8
    q, k = torch.randn(B, T, Hk, K, generator=gen), torch.randn(B, T, Hk, K, generator=gen)
    v = torch.randn(B, T, Hv, V, generator=gen)
    g = -torch.rand(B, T, Hv, generator=gen) * 0.3
    beta = torch.rand(B, T, Hv, generator=gen)
    pairs = [[3, 3], [40, 41], [T - 1, T - 1]]
    ref = naive_state_stats(q, k, v, g, beta, recall_pairs=pairs)
    got = chunked_state_stats(q, k, v, g, beta, recall_pairs=pairs, chunk_size=64)
    for name in ("recall_retention_cos", "recall_retention_ratio"):
        a, b = getattr(got, name).double(), getattr(ref, name)
        assert torch.equal(a.isnan(), b.isnan())
        assert (a - b).nan_to_num().abs().max() <= 1e-4
