"""DeltaNet needle contribution at capture: on the tiny model's own kernel calls, against the fp64 naive sum
(ops/span_contribution/naive.py) and the layer's kernel output; torch and fla-state paths agree.

Agreement criterion: max|a - b| <= 1e-4 on ratios/projections (fp32 capture against fp64; values are O(1)), and
max|sum of parts - o| / max|o| <= 1e-4 for the kernel output.
"""

import pytest
import torch

from workbench.capture import CaptureSettings, capture
from workbench.capture.deltanet.contribution import ContributionRequest
from workbench.capture.recorder import SequenceInfo
from workbench.ops.span_contribution import naive_span_contributions
from workbench.ops.state_norms import chunked_state_stats
from workbench.inputs.spans import TokenSpan

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = 1e-4
T = 150  # not a multiple of the 64-token chunk


def _ids(vocab, length=T, seed=5):
    return torch.randint(0, vocab, (1, length), generator=torch.Generator().manual_seed(seed))


def _spans():
    return [TokenSpan("needle", 0, 0, 20, 27, False), TokenSpan("pair_1", 0, 0, 90, 95, False),
            TokenSpan("answer", 0, 0, 140, 143, True)]


def _run(model, spans, settings=None):
    settings = settings or CaptureSettings(routing=False, deltanet=True, deltanet_path="torch")
    with torch.inference_mode(), capture(model, settings) as run:
        recorder = run.recorder("deltanet")
        recorder.keep_calls = True
        run.begin_sequence(SequenceInfo("s", T, spans))
        model(input_ids=_ids(model.config.vocab_size), use_cache=False)
        return run.collect("deltanet"), recorder.calls


@pytest.mark.parametrize("model_name", ["tiny_next", "tiny_35moe"])
def test_capture_matches_the_naive_fp64_sum_at_every_layer(model_name, request):
    model = request.getfixturevalue(model_name)
    got, calls = _run(model, _spans())
    assert got.contribution_spans == ["needle", "pair_1", "answer"]
    assert got.contribution_positions.tolist() == [140, 141, 142, T - 1]
    named = [(s.name, s.start_token, s.end_token) for s in _spans()]
    for index, call in enumerate(calls):
        ref = naive_span_contributions(call.query, call.key, call.value, call.g, call.beta, [140, 141, 142, T - 1],
                                       named, call.initial_state, use_qk_l2norm=call.use_qk_l2norm)
        for s, name in enumerate(got.contribution_spans):
            torch.testing.assert_close(got.contribution_norm_ratio[index, s], ref.norm_ratio[name][0].float(),
                                       atol=TOL, rtol=0)
            torch.testing.assert_close(got.contribution_projection[index, s], ref.projection[name][0].float(),
                                       atol=TOL, rtol=0)
        torch.testing.assert_close(got.contribution_rest_norm_ratio[index], ref.rest_norm_ratio[0].float(),
                                   atol=TOL, rtol=0)
        torch.testing.assert_close(got.contribution_output_norm[index], ref.o[0].norm(dim=-1).float(),
                                   atol=TOL * float(ref.o.norm(dim=-1).max()), rtol=0)
        # the spans' projections and the rest's add up to 1 (disjoint spans)
        total = got.contribution_projection[index].sum(0) + got.contribution_rest_projection[index]
        torch.testing.assert_close(total, torch.ones_like(total), atol=TOL, rtol=0)


def test_a_span_over_every_position_reproduces_the_layers_kernel_output(tiny_next):
    """Sum over all positions j <= t of the decayed writes = the kernel's own o_t: the 'everything' span takes all
    of o_t (norm ratio and projection 1, rest 0), with o taken from the kernel and the parts from the recompute."""
    spans = [TokenSpan("everything", 0, 0, 0, T, False), TokenSpan("answer", 0, 0, 100, 104, True)]
    got, calls = _run(tiny_next, spans)
    assert got.contribution_positions.tolist() == [100, 101, 102, 103, T - 1]
    ones = torch.ones_like(got.contribution_norm_ratio[:, 0])
    torch.testing.assert_close(got.contribution_norm_ratio[:, 0], ones, atol=TOL, rtol=0)
    torch.testing.assert_close(got.contribution_projection[:, 0], ones, atol=TOL, rtol=0)
    assert got.contribution_rest_norm_ratio.abs().max() <= TOL
    for index, call in enumerate(calls):  # ||o_t|| is the norm of the kernel output the model used
        o = call.output[0][0, [100, 101, 102, 103, T - 1]]  # [Q, Hv, V]
        torch.testing.assert_close(got.contribution_output_norm[index], o.norm(dim=-1), atol=1e-6, rtol=1e-5)


def test_fla_state_path_agrees_with_the_torch_path(tiny_next):
    """The fla path reads v_new from the model's own fla recursion; on the CPU, feed the recorder the chunk states
    and corrected values the torch recompute produces, laid out as fla returns them (h [B, N, Hv, K, V]), and
    check both paths give the same contributions."""
    torch_path, calls = _run(tiny_next, _spans())
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_path="torch")
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        recorder = run.recorder("deltanet")
        recorder.begin_sequence(SequenceInfo("s", T, _spans()))
        for call in calls:
            call.observed, call.v_new = False, None
            stats = chunked_state_stats(call.query, call.key, call.value, call.g, call.beta, None, chunk_size=64,
                                        use_qk_l2norm=call.use_qk_l2norm, return_chunk_states=True)
            from workbench.ops.state_norms.naive import kernel_qk

            kn = kernel_qk(call.key, call.key, call.key.shape[2], call.use_qk_l2norm, torch.float32)[1]
            recorder._observe(call, "fla", (kn, stats.chunk_states.transpose(1, 2), stats.v_new, 64))
            recorder._contribute(call, call.output[0])
        fla_path = recorder.collect()
    assert fla_path.path == "fla"
    for name in ("norm_ratio", "projection", "rest_norm_ratio", "output_norm"):
        torch.testing.assert_close(getattr(fla_path, f"contribution_{name}"),
                                   getattr(torch_path, f"contribution_{name}"), atol=TOL, rtol=0)


def test_no_spans_no_contribution_and_decode_steps_are_not_analysed(tiny_next):
    got, _ = _run(tiny_next, [])
    assert got.contribution_positions is None and got.contribution_norm_ratio is None
    assert ContributionRequest((("a", 0, 1),), (0,)).spans == (("a", 0, 1),)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fla path runs on CUDA with flash-linear-attention")
def test_fla_and_torch_paths_agree_on_cuda(tiny_next):
    pytest.importorskip("fla")
    model = tiny_next.to("cuda")
    try:
        results = {}
        for path in ("torch", "fla"):
            settings = CaptureSettings(routing=False, deltanet=True, deltanet_path=path)
            with torch.inference_mode(), capture(model, settings) as run:
                run.begin_sequence(SequenceInfo("s", T, _spans()))
                model(input_ids=_ids(model.config.vocab_size).cuda(), use_cache=False)
                results[path] = run.collect("deltanet")
        for name in ("norm_ratio", "projection", "rest_norm_ratio"):
            torch.testing.assert_close(getattr(results["fla"], f"contribution_{name}"),
                                       getattr(results["torch"], f"contribution_{name}"), atol=1e-3, rtol=0)
    finally:
        tiny_next.to("cpu")
