"""The GPU path's glue on the CPU: WY inputs + a PyTorch stand-in with the contract of fla's
`chunk_gated_delta_rule_fwd_h` give the same chunk states, norms and recall as the chunk loop and the fp64 scan.
(The real Triton kernel needs CUDA: bench/bench_deltanet_capture.py checks it on the GPU via `calibrate`.)"""

import math

import pytest
import torch

from workbench.ops.state_norms import chunked_state_stats, naive_state_stats, state_norms_from_chunk_states
from workbench.ops.state_norms.fla_states import G_SCALES, calibrate, chunk_states_from_kernel

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = 1e-4


def fwd_h_stand_in(k, w, u, g, initial_state=None, output_final_state=False, log2_gate=False):
    """fla's contract: k, w [B, T, H, K], u [B, T, H, V], g [B, T, H] chunk-local cumulative log decay
    (log2 units when log2_gate, as in fla's exp2 kernels) -> h [B, N, H, K, V] chunk-start states,
    v_new = u - w h [B, T, H, V], final state. Chunks of 64, the last one partial."""
    B, T, H, K = k.shape
    S = torch.zeros(B, H, K, u.shape[-1], dtype=k.dtype) if initial_state is None else initial_state.to(k.dtype)
    starts, news = [], []
    for s in range(0, T, 64):
        kc, wc, uc = (x[:, s:s + 64].transpose(1, 2) for x in (k, w, u))  # [B, H, c, *]
        c = g[:, s:s + 64].transpose(1, 2) * (math.log(2.0) if log2_gate else 1.0)  # [B, H, c]
        starts.append(S)
        v_new = uc - wc @ S
        news.append(v_new)
        S = S * c[..., -1:, None].exp() + (kc * (c[..., -1:] - c).exp()[..., None]).transpose(-1, -2) @ v_new
    return torch.stack(starts, 1), torch.cat(news, 2).transpose(1, 2), S if output_final_state else None


def case(B=1, T=130, Hk=2, Hv=4, K=16, V=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, B, T, Hk, K, generator=gen)
    v = torch.randn(B, T, Hv, V, generator=gen)
    g = -torch.rand(B, T, Hv, generator=gen) * 0.5
    beta = torch.rand(B, T, Hv, generator=gen)
    return q, k, v, g, beta, torch.randn(B, Hv, K, V, generator=gen)


@pytest.mark.parametrize("T", [1, 64, 130], ids=lambda t: f"T{t}")
def test_kernel_chunk_states_equal_the_chunk_loop(T):
    q, k, v, g, beta, h0 = case(T=T)
    loop = chunked_state_stats(q, k, v, g, beta, h0, return_chunk_states=True)
    states, v_new = chunk_states_from_kernel(fwd_h_stand_in, k, v, g, beta, h0)
    assert states.shape == loop.chunk_states.shape and v_new.shape == v.shape
    torch.testing.assert_close(states, loop.chunk_states, rtol=0, atol=1e-5)
    torch.testing.assert_close(v_new, loop.v_new, rtol=0, atol=1e-5)


def test_kernel_path_norms_and_recall_match_the_fp64_scan():
    q, k, v, g, beta, h0 = case(B=2, T=130)
    pairs = torch.tensor([[0, 0], [70, 70], [129, 5]])
    states, v_new = chunk_states_from_kernel(fwd_h_stand_in, k, v, g, beta, h0)
    got = state_norms_from_chunk_states(k, g, states, v_new, v, pairs, [0, 64, 129])
    ref = naive_state_stats(q, k, v, g, beta, h0, pairs, [0, 64, 129])
    assert ((got.state_norm - ref.state_norm).abs().max() / ref.state_norm.abs().max()) <= TOL
    assert (got.recall_rel_err.double() - ref.recall_rel_err).nan_to_num().abs().max() <= TOL
    assert ((got.snapshot_top_sv - ref.snapshot_top_sv).abs().max() / ref.snapshot_top_sv.max()) <= TOL


@pytest.mark.parametrize("log2_gate", [False, True], ids=["exp-gate", "exp2-gate"])
def test_calibrate_finds_the_gate_convention(log2_gate):
    def kernel(**kwargs):
        return fwd_h_stand_in(**kwargs, log2_gate=log2_gate)

    assert calibrate(kernel, "cpu") == G_SCALES[1 if log2_gate else 0]


def test_calibrate_refuses_a_kernel_that_matches_nothing():
    def wrong(**kwargs):
        h, v_new, final = fwd_h_stand_in(**kwargs)
        return h * 1.1, v_new, final

    with pytest.raises(ValueError, match="no known gate convention"):
        calibrate(wrong, "cpu")


def test_capture_takes_the_kernel_path_when_fla_is_available(tiny_next, monkeypatch):
    """capture with deltanet_path='auto' uses the kernel path for prefill when fla_for offers a kernel (here the
    stand-in), the torch path for decode, and gives the same norms as deltanet_path='torch'."""
    import workbench.capture.deltanet as deltanet
    from workbench.capture import CaptureSettings, capture

    ids = torch.randint(0, tiny_next.config.vocab_size, (1, 70), generator=torch.Generator().manual_seed(5))

    def run(path):
        settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head", deltanet_path=path,
                                   state_snapshots=(-1,))
        with torch.inference_mode(), capture(tiny_next, settings) as handle:
            handle.set_recall_pairs([[20, 20]])
            cache = tiny_next(input_ids=ids[:, :69], use_cache=True).past_key_values
            tiny_next(input_ids=ids[:, 69:], past_key_values=cache, use_cache=True)
            return handle.collect_deltanet()

    reference = run("torch")
    monkeypatch.setattr(deltanet, "fla_for", lambda device: (fwd_h_stand_in, 1.0))
    fast = run("auto")
    assert reference.path == "torch" and fast.path == "fla+torch"
    for name in ("head_state_norm", "state_norm_mean", "snapshot_top_sv"):
        a, b = getattr(fast, name), getattr(reference, name)
        assert ((a - b).abs().max() / b.abs().max()) <= TOL, name
    assert (fast.recall_rel_err - reference.recall_rel_err).nan_to_num().abs().max() <= TOL
