"""The GPU path's glue on the CPU: WY inputs + a PyTorch stand-in with the contract of fla's
`chunk_gated_delta_rule_fwd_h` give the same chunk states, norms and recall as the chunk loop and the fp64 scan.
(The real Triton kernel needs CUDA: bench/bench_deltanet_capture.py checks it on the GPU via `calibrate`.)"""

import functools
import importlib
import math

import pytest
import torch

from workbench.ops.state_norms import chunked_state_stats, naive_state_stats, state_norms_from_chunk_states
from workbench.ops.state_norms.fla_states import G_SCALES, calibrate, chunk_states_from_kernel, wy_inputs

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


def test_capture_recomputes_the_states_when_the_models_kernel_is_not_fla(tiny_next, monkeypatch):
    """capture with deltanet_path='auto' uses the kernel path for prefill when fla_for offers a kernel (here the
    stand-in) but the model runs transformers' torch kernel: the states are recomputed with that kernel
    ("fla-recompute"); decode uses the torch path; the norms equal deltanet_path='torch'."""
    import workbench.capture.kernel_device as kernel_device
    import workbench.ops.state_norms.dispatch as dispatch  # the state-statistics dispatch looks fla_for up
    from workbench.capture import CaptureSettings, capture

    ids = torch.randint(0, tiny_next.config.vocab_size, (1, 70), generator=torch.Generator().manual_seed(5))

    def run(path):
        settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head", deltanet_path=path,
                                   state_snapshots=(-1,))
        with torch.inference_mode(), capture(tiny_next, settings) as handle:
            handle.recorder("deltanet").set_recall_pairs([[20, 20]])
            cache = tiny_next(input_ids=ids[:, :69], use_cache=True).past_key_values
            tiny_next(input_ids=ids[:, 69:], past_key_values=cache, use_cache=True)
            return handle.collect("deltanet")

    reference = run("torch")
    monkeypatch.setattr(dispatch, "fla_for", lambda device: (fwd_h_stand_in, 1.0))
    # the stand-in is fla on CPU tensors: where fla is really installed, the capture's device rule would send CPU
    # tensors past it to the torch reference (capture/kernel_device.py), so the rule is off for this simulation
    monkeypatch.setattr(kernel_device, "fla_installed", lambda: False)
    fast = run("auto")
    assert reference.path == "torch" and fast.path == "fla-recompute+torch"
    for name in ("head_state_norm", "state_norm_mean", "snapshot_top_sv"):
        a, b = getattr(fast, name), getattr(reference, name)
        assert ((a - b).abs().max() / b.abs().max()) <= TOL, name
    assert (fast.recall_rel_err - reference.recall_rel_err).nan_to_num().abs().max() <= TOL


def _fla_like(torch_kernel, fla_chunk):
    """A kernel global shaped like fla's chunk_gated_delta_rule: it normalises the keys, builds the WY inputs and
    calls the chunk recursion by `fla_chunk`'s global name (as fla's chunk_gated_delta_rule_fwd does), so the
    capture's wrapper of that recursion sees the model's own states. Its output is the torch kernel's."""

    @functools.wraps(torch_kernel)
    def kernel(query, key, value, g, beta, chunk_size=64, initial_state=None, output_final_state=False,
               use_qk_l2norm_in_kernel=False, **kwargs):
        kn, w, u, c = wy_inputs(key, value, g, beta, 64, use_qk_l2norm_in_kernel)
        h0 = None if initial_state is None else initial_state.float()
        fla_chunk.chunk_gated_delta_rule_fwd_h(k=kn, w=w, u=u, g=c, initial_state=h0, output_final_state=False)
        return torch_kernel(query, key, value, g, beta, chunk_size=chunk_size, initial_state=initial_state,
                            output_final_state=output_final_state, use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel,
                            **kwargs)

    return kernel


def test_capture_reads_the_chunk_states_of_the_models_own_fla_kernel(tiny_next, monkeypatch):
    """When the model's kernel runs fla's chunk recursion, capture takes h and v_new from that call (path "fla"):
    the recursion runs once per layer (not again for the statistics), the norms, recall and snapshots equal
    deltanet_path='torch', the logits are unchanged, and the recursion global is restored on exit."""
    import types

    import workbench.capture.deltanet.recorder as deltanet  # the names the recorder looks up
    import workbench.capture.kernel_device as kernel_device
    import workbench.ops.state_norms.dispatch as dispatch  # and the state-statistics dispatch
    from workbench.capture import CaptureSettings, capture

    modeling = importlib.import_module("transformers.models.qwen3_next.modeling_qwen3_next")
    recursion_calls = []

    @functools.wraps(fwd_h_stand_in)
    def counted_fwd_h(**kwargs):
        recursion_calls.append(kwargs["k"].shape)
        return fwd_h_stand_in(**kwargs)

    fla_chunk = types.ModuleType("fake_fla_chunk")
    fla_chunk.chunk_gated_delta_rule_fwd_h = counted_fwd_h
    ids = torch.randint(0, tiny_next.config.vocab_size, (2, 70), generator=torch.Generator().manual_seed(7))
    settings = dict(routing=False, deltanet=True, deltanet_heads="per_head", state_snapshots=(-1,))

    def run(path):
        with torch.inference_mode(), capture(tiny_next, CaptureSettings(**settings, deltanet_path=path)) as handle:
            handle.recorder("deltanet").set_recall_pairs([[20, 20], [64, 69]])
            logits = tiny_next(input_ids=ids, use_cache=False).logits
            return handle.collect("deltanet"), logits

    reference, _ = run("torch")
    monkeypatch.setattr(modeling, "torch_chunk_gated_delta_rule",
                        _fla_like(modeling.torch_chunk_gated_delta_rule, fla_chunk))
    monkeypatch.setattr(deltanet, "fla_chunk_module", lambda: fla_chunk)
    monkeypatch.setattr(dispatch, "fla_for", lambda device: (fwd_h_stand_in, 1.0))
    # the stand-in is fla on CPU tensors: where fla is really installed, the capture's device rule would send CPU
    # tensors past it to the torch reference (capture/kernel_device.py), so the rule is off for this simulation
    monkeypatch.setattr(kernel_device, "fla_installed", lambda: False)
    with torch.inference_mode():
        plain_logits = tiny_next(input_ids=ids, use_cache=False).logits
    recursion_calls.clear()
    fast, logits = run("auto")
    deltanet_count = sum(kind == "linear_attention" for kind in tiny_next.config.layer_types)
    assert fast.path == "fla" and len(recursion_calls) == deltanet_count
    assert fla_chunk.chunk_gated_delta_rule_fwd_h is counted_fwd_h
    assert torch.equal(logits, plain_logits)
    for name in ("head_state_norm", "state_norm_mean", "state_norm_max", "snapshot_top_sv", "snapshot_eff_rank"):
        a, b = getattr(fast, name), getattr(reference, name)
        assert ((a - b).abs().max() / b.abs().max()) <= TOL, name
    assert torch.equal(fast.recall_rel_err.isnan(), reference.recall_rel_err.isnan())
    assert (fast.recall_rel_err - reference.recall_rel_err).nan_to_num().abs().max() <= TOL
    assert (fast.recall_cos - reference.recall_cos).nan_to_num().abs().max() <= TOL


def test_kernel_states_in_another_layout_are_recomputed_not_misread(tiny_next, monkeypatch):
    """A recursion call whose h is not [B, N, Hv, K, V] (here: value-first states) is not read; the capture
    recomputes the states itself ("fla-recompute") and the norms still equal the torch path."""
    import types

    import workbench.capture.deltanet.recorder as deltanet  # the names the recorder looks up
    import workbench.capture.kernel_device as kernel_device
    import workbench.ops.state_norms.dispatch as dispatch  # and the state-statistics dispatch
    from workbench.capture import CaptureSettings, capture

    modeling = importlib.import_module("transformers.models.qwen3_next.modeling_qwen3_next")

    def value_first_fwd_h(k, w, u, g, initial_state=None, output_final_state=False, state_v_first=True):
        h, v_new, final = fwd_h_stand_in(k=k, w=w, u=u, g=g, initial_state=initial_state)
        return h.transpose(-1, -2), v_new, final

    fla_chunk = types.ModuleType("fake_fla_chunk")
    fla_chunk.chunk_gated_delta_rule_fwd_h = value_first_fwd_h
    ids = torch.randint(0, tiny_next.config.vocab_size, (1, 70), generator=torch.Generator().manual_seed(8))

    def run(path):
        settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head", deltanet_path=path)
        with torch.inference_mode(), capture(tiny_next, settings) as handle:
            tiny_next(input_ids=ids, use_cache=False)
            return handle.collect("deltanet")

    reference = run("torch")
    monkeypatch.setattr(modeling, "torch_chunk_gated_delta_rule",
                        _fla_like(modeling.torch_chunk_gated_delta_rule, fla_chunk))
    monkeypatch.setattr(deltanet, "fla_chunk_module", lambda: fla_chunk)
    monkeypatch.setattr(dispatch, "fla_for", lambda device: (fwd_h_stand_in, 1.0))
    # the stand-in is fla on CPU tensors: where fla is really installed, the capture's device rule would send CPU
    # tensors past it to the torch reference (capture/kernel_device.py), so the rule is off for this simulation
    monkeypatch.setattr(kernel_device, "fla_installed", lambda: False)
    fast = run("auto")
    assert fast.path == "fla-recompute"
    assert ((fast.head_state_norm - reference.head_state_norm).abs().max()
            / reference.head_state_norm.abs().max()) <= TOL
