"""DeltaNet state capture against the layer's own kernel, the fp64 scan and a whole-sequence prefill; the model
left untouched.

Agreement criterion for norms: max|a - b| / max|b| <= 1e-4 (norm-relative, as in tests/ops/test_state_norms.py).
"""

import importlib
import math

import pytest
import torch
from support.model_state import kernel_globals

from workbench.capture import CaptureSettings, capture
from workbench.capture.deltanet.recorder import deltanet_layers
from workbench.ops.state_norms import naive_state_stats

pytestmark = pytest.mark.filterwarnings("ignore")
TOL = 1e-4
MODELS = ["tiny_next", "tiny_35moe"]


def _ids(vocab, batch=1, length=70, seed=3):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def _rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max()).item()


def _kernel_globals(model):
    return kernel_globals(model, _adapter(model))


def _modeling_file(model):
    return type(next(iter(deltanet_layers(model, _adapter(model)).values()))).__module__


def _adapter(model):
    from workbench.adapters import adapter_for_config

    return adapter_for_config(model.config)


def _naive(call, **extra):
    return naive_state_stats(call.query, call.key, call.value, call.g, call.beta, call.initial_state,
                             use_qk_l2norm=call.use_qk_l2norm, **extra)


@pytest.mark.parametrize("model_name", MODELS)
def test_forward_calls_the_patched_globals_once_per_deltanet_layer(model_name, request):
    """Pins the transformers fact the capture rests on: GatedDeltaNet.forward looks the kernel up by module
    name on every call (no hub-kernel indirection), so replacing the global is what the forward runs."""
    model = request.getfixturevalue(model_name)
    with torch.inference_mode(), capture(model, CaptureSettings(routing=False, deltanet=True)) as run:
        run.recorder("deltanet").keep_calls = True
        model(input_ids=_ids(model.config.vocab_size, length=9), use_cache=False)
    expected = sorted(deltanet_layers(model, _adapter(model)))
    assert expected == [i for i, kind in enumerate(model.config.layer_types) if kind == "linear_attention"]
    assert [(c.layer, c.kind, c.start) for c in run.recorder("deltanet").calls] == [(i, "chunk", 0) for i in expected]


@pytest.mark.parametrize("model_name", MODELS)
def test_captured_inputs_reproduce_the_layers_kernel_output_and_final_state(model_name, request):
    model = request.getfixturevalue(model_name)
    ids = _ids(model.config.vocab_size, batch=2)
    with torch.inference_mode(), capture(model, CaptureSettings(routing=False, deltanet=True)) as run:
        run.recorder("deltanet").keep_calls = True
        out = model(input_ids=ids, use_cache=True)
    originals = _kernel_globals(model)  # restored after exit
    module = _modeling_file(model)
    chunk_kernel = originals[(module, "torch_chunk_gated_delta_rule")]
    for call in run.recorder("deltanet").calls:
        o, state = chunk_kernel(call.query, call.key, call.value, g=call.g, beta=call.beta, initial_state=None,
                                output_final_state=True, use_qk_l2norm_in_kernel=call.use_qk_l2norm)
        assert torch.equal(o, call.output[0]) and torch.equal(state, call.output[1])
        cache = out.past_key_values  # what the layer itself kept (get_recurrent_state from transformers 5.25)
        cached = cache.get_recurrent_state(call.layer) if hasattr(cache, "get_recurrent_state") \
            else cache.layers[call.layer].recurrent_states[0]
        assert torch.equal(state, cached)


@pytest.mark.parametrize("model_name", MODELS)
def test_norms_gates_recall_snapshots_match_the_fp64_scan(model_name, request):
    model = request.getfixturevalue(model_name)
    ids = _ids(model.config.vocab_size, batch=2, length=70)  # crosses a 64-token chunk boundary
    pairs = torch.tensor([[3, 3], [40, 40], [66, 10]])
    snaps = (0, 63, -1)
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head", state_snapshots=snaps)
    with torch.inference_mode(), capture(model, settings) as run:
        run.recorder("deltanet").keep_calls = True
        run.recorder("deltanet").set_recall_pairs(pairs)
        model(input_ids=ids, use_cache=False)
        got = run.collect("deltanet")
    assert got.path == "torch" and got.positions.tolist() == list(range(70)) * 2
    for index, call in enumerate(run.recorder("deltanet").calls):
        ref = _naive(call, recall_pairs=pairs, snapshot_positions=[0, 63, 69])
        B, T, H = ref.state_norm.shape
        norm = ref.state_norm.reshape(B * T, H)  # rows b*T + t
        assert _rel(got.head_state_norm[index], norm) <= TOL
        assert _rel(got.state_norm_mean[index], norm.mean(-1)) <= TOL
        assert _rel(got.state_norm_max[index], norm.amax(-1)) <= TOL
        g = call.g.double().reshape(B * T, H)
        torch.testing.assert_close(got.log_decay_min[index].double(), g.amin(-1), rtol=1e-6, atol=0)
        torch.testing.assert_close(got.decay_mean[index].double(), g.exp().mean(-1), rtol=1e-6, atol=0)
        half_life = (math.log(2.0) / -g).mean(-1)
        torch.testing.assert_close(got.half_life_mean[index].double(), half_life, rtol=1e-5, atol=0)
        torch.testing.assert_close(got.beta_max[index].double(), call.beta.double().reshape(B * T, H).amax(-1))
        rel_err = ref.recall_rel_err.transpose(0, 1).reshape(3, B * T, H)  # [P, B*T, H]
        assert torch.equal(got.recall_rel_err[index].isnan(), rel_err.isnan())
        assert (got.recall_rel_err[index].double() - rel_err).nan_to_num().abs().max() <= TOL
        assert _rel(got.snapshot_top_sv[index], ref.snapshot_top_sv.reshape(-1, H)) <= TOL
        assert _rel(got.snapshot_eff_rank[index], ref.snapshot_eff_rank.reshape(-1, H)) <= TOL
    assert got.snapshot_rows.tolist() == [0, 63, 69, 70, 133, 139]


def test_cached_decode_steps_continue_the_prefill_norms(tiny_next):
    """Prefill 40 tokens into a cache, then 3 one-token decode steps: the decode calls read initial_state
    from the cache, positions continue at 40, and the norms equal those of one prefill of all 43 tokens."""
    ids = _ids(tiny_next.config.vocab_size, length=43)
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head")
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        whole = None
        tiny_next(input_ids=ids, use_cache=False)
        whole = run.collect("deltanet")
        run.recorder("deltanet").keep_calls = True
        cache = tiny_next(input_ids=ids[:, :40], use_cache=True).past_key_values
        for t in range(40, 43):
            cache = tiny_next(input_ids=ids[:, t:t + 1], past_key_values=cache, use_cache=True).past_key_values
        stepped = run.collect("deltanet")
    assert stepped.positions.tolist() == list(range(43))
    calls = run.recorder("deltanet").calls
    layers = whole.layers
    assert [c.kind for c in calls] == ["chunk"] * len(layers) + ["recurrent"] * 3 * len(layers)
    previous = {}
    for call in calls:  # each decode step starts from the state the previous call of its layer returned
        if call.kind == "recurrent":
            assert torch.equal(call.initial_state, previous[call.layer])
        previous[call.layer] = call.output[1]
    assert _rel(stepped.head_state_norm, whole.head_state_norm) <= TOL
    assert _rel(stepped.state_norm_mean, whole.state_norm_mean) <= TOL
    for call in calls[-len(layers):]:  # the last decode step against the fp64 scan from the cached state
        ref = _naive(call)
        assert _rel(stepped.head_state_norm[layers.index(call.layer), -1], ref.state_norm[0, 0]) <= TOL


@pytest.mark.parametrize("model_name", MODELS)
def test_logits_unchanged_and_globals_restored(model_name, request):
    model = request.getfixturevalue(model_name)
    before = _kernel_globals(model)
    ids = _ids(model.config.vocab_size, batch=2, length=37)
    with torch.inference_mode():
        plain = model(input_ids=ids, use_cache=False).logits
        settings = CaptureSettings(deltanet=True, deltanet_head_stride=5, state_snapshots=(-1,))
        with capture(model, settings) as run:
            patched = _kernel_globals(model)
            assert all(patched[key] is not before[key] for key in before)
            run.recorder("deltanet").set_recall_pairs([[4, 4]])
            traced = model(input_ids=ids, use_cache=False).logits
            assert run.collect("deltanet") is not None
    assert torch.equal(traced, plain)
    assert all(_kernel_globals(model)[key] is before[key] for key in before)
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model, CaptureSettings(deltanet=True)):
            raise RuntimeError("boom")
    assert all(_kernel_globals(model)[key] is before[key] for key in before)
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == hooks


def test_kernel_called_outside_a_layer_passes_through(tiny_next):
    module = importlib.import_module(_modeling_file(tiny_next))
    q, k = torch.randn(2, 1, 5, 4, 16)  # as many key heads as value heads: what every release's kernel takes
    v = torch.randn(1, 5, 4, 16)
    g, beta = -torch.rand(2, 1, 5, 4)
    original = module.torch_chunk_gated_delta_rule
    with capture(tiny_next, CaptureSettings(routing=False, deltanet=True)) as run:
        assert module.torch_chunk_gated_delta_rule is not original  # the wrapper is what runs
        o, state = module.torch_chunk_gated_delta_rule(q, k, v, g=g, beta=beta, output_final_state=True,
                                                       use_qk_l2norm_in_kernel=True)
        assert run.collect("deltanet") is None
    o_ref, state_ref = original(q, k, v, g=g, beta=beta, output_final_state=True, use_qk_l2norm_in_kernel=True)
    assert torch.equal(o, o_ref) and torch.equal(state, state_ref)


def test_fla_path_on_cpu_is_refused_clearly_and_an_error_mid_forward_restores(tiny_next):
    before = _kernel_globals(tiny_next)
    with pytest.raises(RuntimeError, match="deltanet_path='fla' but fla needs a CUDA device"):
        with capture(tiny_next, CaptureSettings(routing=False, deltanet=True, deltanet_path="fla")):
            tiny_next(input_ids=_ids(tiny_next.config.vocab_size, length=5), use_cache=False)
    assert all(_kernel_globals(tiny_next)[key] is before[key] for key in before)
    with torch.inference_mode(), capture(tiny_next, CaptureSettings(routing=False, deltanet=True)) as run:
        tiny_next(input_ids=_ids(tiny_next.config.vocab_size, length=5), use_cache=False)  # a clean forward after it
        assert run.collect("deltanet").positions.tolist() == list(range(5))


def test_settings_validation_and_round_trip():
    settings = CaptureSettings(deltanet=True, deltanet_heads="per_head", state_snapshots=[0, -1])
    assert settings["deltanet"].state_snapshots == (0, -1)
    assert CaptureSettings.from_dict(settings.to_dict()) == settings
    for bad, message in [
        (dict(deltanet=True, deltanet_heads="all"), "deltanet_heads must be"),
        (dict(deltanet=True, deltanet_head_stride=-1), "deltanet_head_stride must be an integer >= 0"),
        (dict(deltanet=True, state_snapshots=5), "state_snapshots must be a sequence"),
        (dict(deltanet=True, state_snapshots=(1.5,)), "state_snapshots must be an int, got 1.5"),
        (dict(deltanet=True, deltanet_path="cuda"), "deltanet_path must be"),
        (dict(state_snapshots=(3,)), "state_snapshots needs deltanet=True"),
    ]:
        with pytest.raises(ValueError, match=message):
            CaptureSettings(**bad)


def test_recorder_refuses_mixed_recall_pairs_in_one_collect(tiny_next):
    with torch.inference_mode(), capture(tiny_next, CaptureSettings(routing=False, deltanet=True)) as run:
        run.recorder("deltanet").set_recall_pairs([[1, 1]])
        tiny_next(input_ids=_ids(tiny_next.config.vocab_size, length=5), use_cache=False)
        run.recorder("deltanet").set_recall_pairs([[2, 2]])
        tiny_next(input_ids=_ids(tiny_next.config.vocab_size, length=5), use_cache=False)
        with pytest.raises(RuntimeError, match="recall pairs changed"):
            run.collect("deltanet")


def _one_key_model(vocab: int):
    """Tiny Qwen3-Next whose first DeltaNet layer writes every token (from position 3 on) under ONE key with
    beta ~ 1 and no decay: each embedding = a shared part (e0) + its own part of equal norm, the key rows of
    in_proj_qkvz read only e0 (so after the norm, the causal conv and SiLU the key is the same for t >= 3), the
    beta rows read only e0 (b = 3 * 5.66, beta ~ 1), the decay rows read nothing and A_log = -20 (g ~ -3e-9)."""
    from support.toy import build_model, qwen3_next_config

    model = build_model(qwen3_next_config(num_layers=4, vocab_size=vocab), seed=1)
    cfg, layer = model.config, model.model.layers[0].linear_attn
    dk, dv = cfg.linear_key_head_dim, cfg.linear_value_head_dim
    group = cfg.linear_num_value_heads // cfg.linear_num_key_heads
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        own = torch.randn(vocab, cfg.hidden_size, generator=gen)
        own[:, 0] = 0
        embeddings = own / own.norm(dim=1, keepdim=True) * 4
        embeddings[:, 0] = 4.0
        model.model.embed_tokens.weight.copy_(embeddings)
        per_head = 2 * dk + 2 * group * dv  # rows per key head: [q | k | v (group heads) | z (group heads)]
        layer.in_proj_ba.weight.zero_()  # rows per key head: [b (group) | a (group)]
        for h in range(cfg.linear_num_key_heads):
            keys = layer.in_proj_qkvz.weight[h * per_head + dk: h * per_head + 2 * dk]
            keys.zero_()
            keys[:, 0] = torch.rand(dk, generator=gen) + 0.5
            layer.in_proj_ba.weight[h * 2 * group: h * 2 * group + group, 0] = 3.0
        layer.A_log.fill_(-20.0)
    return model


def test_recall_collapses_when_later_tokens_overwrite_the_key_end_to_end(tokenizer):
    """Through the whole capture path: the pair (10, 10) is recalled exactly at token 10 (rel_err ~ 0) and lost
    from token 11 on, when the next token writes its own value under the same key (rel_err ~ ||v11 - v10|| /
    ||v10||, about 1). A closed-form version of this is in tests/ops/test_state_norms.py."""
    model = _one_key_model(len(tokenizer))
    ids = torch.randperm(len(tokenizer), generator=torch.Generator().manual_seed(1))[:24][None]
    with torch.inference_mode(), capture(model, CaptureSettings(routing=False, deltanet=True)) as run:
        run.recorder("deltanet").keep_calls = True
        run.recorder("deltanet").set_recall_pairs([[10, 10]])
        model(input_ids=ids, use_cache=False)
        got = run.collect("deltanet")
    first = run.recorder("deltanet").calls[0]
    keys = torch.nn.functional.normalize(first.key[0, 3:].double(), dim=-1)
    assert (keys - keys[0]).abs().max() < 1e-6 and first.beta[0, 3:].min() > 0.9999 and first.g.min() > -1e-8
    rel_err = got.recall_rel_err[0, 0, :, :]  # layer 0, pair 0: [T, Hv]
    assert rel_err[:10].isnan().all()
    assert rel_err[10].max() < 1e-4
    assert rel_err[11:].amin() > 0.5
    assert (got.recall_cos[0, 0, 10] > 0.9999).all() and got.recall_cos[0, 0, 11:].mean() < 0.5
    ref = _naive(first, recall_pairs=torch.tensor([[10, 10]]))
    assert (rel_err.double() - ref.recall_rel_err[0, 0]).nan_to_num().abs().max() <= TOL


@pytest.mark.parametrize("stride", [3, 5])
def test_head_stride_with_cached_decoding_at_every_start_modulo_the_stride(tiny_next, stride):
    """A prefill of p tokens then one-token decode steps, for every p mod stride: the capture never breaks the
    forward (the crash: torch.arange(first, T, stride) with first > T), the logits equal one long prefill's, and the
    per-head rows are exactly the positions divisible by the stride, with the long prefill's values."""
    length = 24
    ids = _ids(tiny_next.config.vocab_size, length=length, seed=11)
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_head_stride=stride)
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        whole_logits = tiny_next(input_ids=ids, use_cache=False).logits
        whole = run.collect("deltanet")
        for prefill in range(length - 2 * stride, length - stride):  # every start position modulo the stride
            out = tiny_next(input_ids=ids[:, :prefill], use_cache=True)
            logits = [out.logits]
            for t in range(prefill, length):
                out = tiny_next(input_ids=ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
                logits.append(out.logits)
            stepped = run.collect("deltanet")
            assert torch.allclose(torch.cat(logits, 1), whole_logits, atol=1e-4, rtol=1e-4)
            sampled = stepped.positions[stepped.head_rows].tolist()
            assert sampled == list(range(0, length, stride))
            assert _rel(stepped.head_state_norm, whole.head_state_norm) <= TOL
            assert _rel(stepped.head_beta, whole.head_beta) <= TOL
