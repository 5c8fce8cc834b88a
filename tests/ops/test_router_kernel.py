"""The fused router-summary kernel against fp64 summaries computed here from their definitions (router_stats.py),
and against the PyTorch ops the CPU path runs. On CUDA where there is a GPU, else under triton's interpreter."""

import pytest
import torch

from workbench.ops import router_stats

pytest.importorskip("triton")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def fp64_summaries(logits, ids, sigmoid):
    """Entropy, chosen mass and margin by their definitions, in fp64, one row at a time."""
    x = logits.double().cpu()
    rows = []
    for row, chosen in zip(x, ids.cpu().long()):
        p = torch.sigmoid(row) / torch.sigmoid(row).sum() if sigmoid else torch.softmax(row, -1)
        left = torch.ones_like(p, dtype=torch.bool)
        left[chosen] = False
        margin = p[chosen].min() - p[left].max() if left.any() else torch.tensor(0.0, dtype=torch.float64)
        rows.append((-(p * p.log()).sum(), p[chosen].sum(), margin))
    return [torch.stack(column) for column in zip(*rows)]


def router_case(N, E, k, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, E, generator=gen) * 2
    ids = logits.topk(k, -1).indices.to(torch.int16 if E < 32768 else torch.int32)
    return logits.to(dtype).to(DEVICE), ids.to(DEVICE)


@pytest.mark.parametrize("sigmoid", [False, True], ids=["softmax", "sigmoid"])
@pytest.mark.parametrize("N,E,k", [(37, 512, 10), (20, 60, 4), (16, 8, 8), (1, 128, 1)],
                         ids=["qwen3-next", "non-power-of-two", "k-equals-E", "one-token"])
def test_kernel_matches_the_definitions(N, E, k, sigmoid):
    logits, ids = router_case(N, E, k)
    got = router_stats.fused_router_stats(logits, ids, sigmoid=sigmoid)
    names = ("router_entropy", "topk_mass", "topk_margin")
    for name, expected in zip(names, fp64_summaries(logits, ids, sigmoid)):
        assert got[name].shape == (N,) and got[name].dtype == torch.float32
        assert (got[name].cpu().double() - expected).abs().max() <= 2e-6 * max(1.0, expected.abs().max()), name
    if k == E:
        assert torch.equal(got["topk_margin"].cpu(), torch.zeros(N))
    torch_ops = router_stats.ROUTER_STATS["sigmoid" if sigmoid else "softmax"](logits.cpu(), ids.cpu())  # CPU: torch
    for name in names:  # the same fp32 math in another order: round-off relative to the values
        assert (got[name].cpu() - torch_ops[name]).abs().max() <= 2e-6 * max(1.0, torch_ops[name].abs().max()), name


def test_bf16_strided_logits_and_no_tokens():
    logits, ids = router_case(40, 512, 10, torch.bfloat16)
    wide = torch.cat([logits, logits], -1)[:, :512]  # a row stride of 1024: the kernel reads it as it is
    got = router_stats.fused_router_stats(wide, ids)
    expected = router_stats.ROUTER_STATS["softmax"](logits.cpu(), ids.cpu())
    for name, value in expected.items():
        assert (got[name].cpu() - value).abs().max() <= 2e-6 * max(1.0, value.abs().max()), name
    empty = router_stats.fused_router_stats(logits[:0], ids[:0])
    assert all(v.shape == (0,) for v in empty.values())


def test_the_library_runs_the_kernel_on_cuda_only(monkeypatch):
    """router_token_stats: the kernel for CUDA tensors; CPU tensors keep the PyTorch ops (even under the
    interpreter)."""
    assert router_stats.triton_support.runs_on("cpu", router_stats.KERNEL) is False
    assert router_stats.triton_support.runs_on("cuda", router_stats.KERNEL) is True
    calls = []
    monkeypatch.setattr(router_stats, "fused_router_stats", lambda *a, **k: calls.append(k))
    logits, ids = router_case(4, 64, 2)
    router_stats.router_token_stats(logits, ids)
    router_stats.sigmoid_router_token_stats(logits, ids)
    assert calls == ([{"sigmoid": False}, {"sigmoid": True}] if DEVICE == "cuda" else [])
