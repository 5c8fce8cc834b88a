"""The fused Triton state-norm kernel against the PyTorch loop-free path and the fp64 token scan.

It runs on CUDA where there is a GPU, and else under triton's interpreter on CPU tensors (tests/conftest.py sets
TRITON_INTERPRET=1 there); without triton installed the tests skip. Inputs are the chunk-start states and corrected values of the PyTorch
chunk loop, laid out as fla's recursion returns them (h [B, N, Hv, K, V]).
"""

import pytest
import torch
from test_state_norms import make_case, rel_max

from workbench.ops.state_norms import (
    chunked_state_stats,
    naive_state_stats,
    state_norms_from_chunk_states,
    triton_norms,
)
from workbench.ops.state_norms.naive import l2norm

pytest.importorskip("triton")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

CASES = [  # head dims and chunk sizes are powers of two >= 16 (tl.dot's minimum); T crosses chunk edges
    dict(B=1, T=63, Hk=2, Hv=4, K=16, V=16, C=64, kind="random", h0=False),
    dict(B=2, T=130, Hk=2, Hv=4, K=32, V=16, C=64, kind="random", h0=True),
    dict(B=1, T=97, Hk=1, Hv=2, K=16, V=32, C=16, kind="repeat_keys", h0=True),
    dict(B=1, T=65, Hk=2, Hv=2, K=16, V=16, C=16, kind="fast_decay", h0=True),
    dict(B=1, T=130, Hk=1, Hv=2, K=16, V=16, C=32, kind="slow_decay", h0=True),
]


def fla_layout_inputs(case, dtype=torch.float32):
    """(kernel keys, g, h [B, N, Hv, K, V], v_new) from the PyTorch chunk loop, plus the fp64 reference's args."""
    (q, k, v, g, beta), state, _, _ = make_case(**case)
    loop = chunked_state_stats(q, k, v, g, beta, state, chunk_size=case["C"], return_chunk_states=True)
    kn = l2norm(k)  # the recursion sees normalised keys
    h = loop.chunk_states.transpose(1, 2)  # fla's layout, a view (strided, as the capture passes it)
    args = [x.to(DEVICE) for x in (kn, g, h, loop.v_new)]
    args = [args[0].to(dtype), args[1], args[2].to(dtype), args[3].to(dtype)]
    return args, (q, k, v, g, beta, state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"B{c['B']}-T{c['T']}-Hv{c['Hv']}-K{c['K']}-V{c['V']}-C{c['C']}-"
                                                     f"{c['kind']}")
@pytest.mark.parametrize("block_v", [16, 64])
def test_kernel_matches_fp64_scan_and_torch_path(case, block_v):
    assert triton_norms.available(DEVICE) == (DEVICE == "cuda")  # the library runs it on CUDA only
    (kn, g, h, v_new), scan_args = fla_layout_inputs(case)
    got = triton_norms.chunk_state_norms(kn, g, h, v_new, chunk_size=case["C"], block_v=block_v)
    assert got.shape == (case["B"], case["T"], case["Hv"]) and got.dtype == torch.float32
    torch_path = state_norms_from_chunk_states(kn, g, h.transpose(1, 2), v_new, chunk_size=case["C"],
                                               use_qk_l2norm=False, kernel="torch")
    assert rel_max(got.cpu(), torch_path.state_norm.cpu()) <= 1e-5
    assert rel_max(got.cpu(), naive_state_stats(*scan_args).state_norm) <= 1e-4


def test_bf16_states_as_a_bf16_model_returns_them():
    """bf16 h, v_new and keys (a bf16 model's recursion): the kernel's exact-product dots agree with the PyTorch
    path fed the same rounded inputs to fp32 round-off."""
    case = CASES[1]
    (kn, g, h, v_new), _ = fla_layout_inputs(case, torch.bfloat16)
    got = triton_norms.chunk_state_norms(kn, g, h, v_new, chunk_size=case["C"])
    ref = state_norms_from_chunk_states(kn, g, h.transpose(1, 2), v_new, chunk_size=case["C"], use_qk_l2norm=False,
                                        kernel="torch")
    assert rel_max(got.cpu(), ref.state_norm.cpu()) <= 1e-5


def test_refuses_shapes_it_cannot_tile():
    case = dict(CASES[0], V=8)
    (kn, g, h, v_new), _ = fla_layout_inputs(case)
    assert not triton_norms.supports(kn, v_new, 64)
    with pytest.raises(ValueError, match="powers of two"):
        triton_norms.chunk_state_norms(kn, g, h, v_new)
    with pytest.raises(ValueError, match="shapes do not fit"):
        triton_norms.chunk_state_norms(kn, g[:, :-1], h, v_new)


def test_loop_free_path_dispatches_norms_alone_to_the_kernel(monkeypatch):
    """kernel="auto": norms alone go through the kernel (same numbers as "torch"); recall keeps the PyTorch path."""
    case = CASES[1]
    (kn, g, h, v_new), _ = fla_layout_inputs(case)
    calls = []
    monkeypatch.setattr(triton_norms, "available", lambda device: True)  # on the CPU: the interpreted kernel
    original = triton_norms.chunk_state_norms
    monkeypatch.setattr(triton_norms, "chunk_state_norms", lambda *a, **k: calls.append(1) or original(*a, **k))
    auto = state_norms_from_chunk_states(kn, g, h.transpose(1, 2), v_new, chunk_size=64, use_qk_l2norm=False)
    assert calls == [1]
    forced = state_norms_from_chunk_states(kn, g, h.transpose(1, 2), v_new, chunk_size=64, use_qk_l2norm=False,
                                           kernel="torch")
    assert rel_max(auto.state_norm.cpu(), forced.state_norm.cpu()) <= 1e-5
    pairs = torch.tensor([[0, 0], [40, 40]])
    v = torch.randn(*v_new.shape, device=v_new.device)
    with_recall = state_norms_from_chunk_states(kn, g, h.transpose(1, 2), v_new, v, pairs, chunk_size=64,
                                                use_qk_l2norm=False)
    assert calls == [1] and with_recall.recall_cos is not None
    assert rel_max(with_recall.state_norm.cpu(), forced.state_norm.cpu()) <= 1e-6
