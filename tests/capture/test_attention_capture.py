"""Attention-recall capture against the model's own eager attention weights; outputs and settings untouched."""

import math

import pytest
import torch
from support.toy import build_model, qwen3_next_config
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from workbench.capture import AttentionCaptureError, CaptureSettings, capture
from workbench.capture.attention.recorder import GATE_LOW, AttentionRecorder
from workbench.capture.attention.function import ACTIVE, recall_name, rows_attention_stats, select_rows
from workbench.ops.attention_stats import naive_attention_stats, stats_from_weights

pytestmark = pytest.mark.filterwarnings("ignore")

SPANS = [("needle", 5, 11), ("all", 0, 37), ("first", 0, 1), ("tail", 30, 37)]
NAMED = [9, 10]


@pytest.fixture(scope="module")
def next8(tokenizer):
    """8 layers: full attention on layers 3 and 7 (GQA 4:2, head_dim 16, rotary on 25% of each head)."""
    return build_model(qwen3_next_config(num_layers=8, vocab_size=len(tokenizer)), seed=4)


def _input_ids(vocab, batch=2, length=37):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(5))


def _captured(model, input_ids, stride=4, top_k=5):
    settings = CaptureSettings(routing=False, attention=True, attention_stride=stride, attention_topk=top_k)
    with capture(model, settings) as run:
        run.recorder("attention").set_sequence(SPANS, NAMED)
        logits = model(input_ids=input_ids, use_cache=False).logits
        return logits, run.collect("attention")


def _eager_weights(model, input_ids):
    """The model's own eager attention maps [B, Hq, T, T], one per full-attention layer (output_attentions)."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        out = model(input_ids=input_ids, use_cache=False, output_attentions=True)
    finally:
        model.set_attn_implementation(before)
    return [w for w in out.attentions if w is not None], out.logits


@pytest.mark.parametrize("model_name", ["next8", "tiny_35moe"])
def test_stats_equal_eager_attention_weights(model_name, request):
    model = request.getfixturevalue(model_name)
    input_ids = _input_ids(model.config.vocab_size)
    _, got = _captured(model, input_ids)
    weights, _ = _eager_weights(model, input_ids)
    kinds = model.config.layer_types
    assert got.layers == [i for i, kind in enumerate(kinds) if kind == "full_attention"]
    assert len(weights) == len(got.layers)
    expected_rows = [3, 7, 9, 10, 11, 15, 19, 23, 27, 31, 35, 36]  # stride 4, named 9 and 10, the last token
    assert got.query_positions.tolist() == expected_rows
    for index, weight in enumerate(weights):
        ref = stats_from_weights(weight, got.query_positions, SPANS, 5)
        for name in ("entropy", "sink_mass", "topk_weight"):
            torch.testing.assert_close(getattr(got, name)[index].double(), getattr(ref, name), atol=1e-5, rtol=0)
        torch.testing.assert_close(got.mean_distance[index].double(), ref.mean_distance, atol=1e-5, rtol=1e-5)
        for name, _, _ in SPANS:
            torch.testing.assert_close(got.span_mass[name][index].double(), ref.span_mass[name], atol=1e-5, rtol=0)
        assert torch.equal(got.topk_pos[index], ref.topk_pos)
    assert got.span_mass["all"].sub(1).abs().max() < 1e-5


def _gate_reference(model, layer, input_ids):
    """sigmoid of the second half of each head's q_proj output, from the attention block's input."""
    attn = model.model.layers[layer].self_attn
    seen = {}
    handle = attn.register_forward_pre_hook(lambda m, args, kwargs: seen.update(h=kwargs["hidden_states"]),
                                            with_kwargs=True)
    try:
        model(input_ids=input_ids, use_cache=False)
    finally:
        handle.remove()
    projected = seen["h"].double() @ attn.q_proj.weight.double().T  # [B, T, Hq * 2D]
    d = attn.head_dim
    gate = torch.sigmoid(projected.view(*projected.shape[:2], -1, 2 * d)[..., d:])  # [B, T, Hq, D]
    return gate.mean(-1), (gate < GATE_LOW).double().mean(-1)


def test_gate_matches_q_proj_layout(tokenizer):
    model = build_model(qwen3_next_config(num_layers=4, vocab_size=len(tokenizer)), seed=6)
    with torch.no_grad():
        model.model.layers[3].self_attn.q_proj.weight.mul_(40.0)  # spread the gates so some fall below 0.1
    input_ids = _input_ids(model.config.vocab_size)
    _, got = _captured(model, input_ids)
    mean, low = _gate_reference(model, 3, input_ids)
    assert got.gate_mean.shape == (1, 2, 37, 4)
    torch.testing.assert_close(got.gate_mean[0].double(), mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.gate_low_fraction[0].double(), low, atol=1e-6, rtol=0)
    assert 0.05 < got.gate_low_fraction.mean() < 0.95


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_logits_unchanged_and_implementation_restored(next8, implementation):
    input_ids = _input_ids(next8.config.vocab_size)
    next8.set_attn_implementation(implementation)
    try:
        plain = next8(input_ids=input_ids, use_cache=False).logits
        traced, got = _captured(next8, input_ids)
        assert torch.equal(traced, plain)
        assert got is not None
        assert next8.config._attn_implementation == implementation
        assert not ACTIVE
    finally:
        next8.set_attn_implementation("sdpa")


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_restored_after_error(next8):
    hooks = _hook_count(next8)
    with pytest.raises(RuntimeError, match="boom"):
        with capture(next8, CaptureSettings(attention=True)):
            assert next8.config._attn_implementation == recall_name("sdpa")
            assert len(ACTIVE) == 2 and _hook_count(next8) > hooks
            raise RuntimeError("boom")
    assert next8.config._attn_implementation == "sdpa"
    assert not ACTIVE and _hook_count(next8) == hooks


def test_nested_attention_capture_is_refused(next8):
    with capture(next8, CaptureSettings(attention=True)):
        with pytest.raises(AttentionCaptureError, match="already active"):
            with capture(next8, CaptureSettings(attention=True)):
                pass
        assert next8.config._attn_implementation == recall_name("sdpa")
    assert next8.config._attn_implementation == "sdpa" and not ACTIVE


def test_model_without_full_attention_is_refused(tokenizer):
    config = qwen3_next_config(num_layers=2, vocab_size=len(tokenizer), layer_types=["linear_attention"] * 2)
    model = build_model(config)
    with pytest.raises(AttentionCaptureError, match="needs a full-attention layer"):
        with capture(model, CaptureSettings(attention=True)):
            pass
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("bad", [dict(attention_stride=-1), dict(attention_topk=0), dict(attention_stride=True)],
                         ids=["negative-stride", "zero-topk", "bool-stride"])
def test_settings_validate(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        CaptureSettings(attention=True, **bad)


def test_settings_round_trip():
    settings = CaptureSettings(attention=True, attention_stride=16, attention_topk=3)
    assert CaptureSettings.from_dict(settings.to_dict()) == settings


def test_select_rows():
    assert select_rows(0, 10, 4, []) == [3, 7, 9]
    assert select_rows(0, 10, 0, [2, 99]) == [2, 9]
    assert select_rows(5, 1, 4, [3]) == [5]  # a decode step: its one token
    assert select_rows(7, 1, 4, []) == [7]
    assert select_rows(6, 6, 4, [6]) == [6, 7, 11]


def test_rows_of_a_suffix_match_naive():
    """Decode-style calls (query = last Tq of Tk keys), rows chunked: same numbers as the fp64 reference."""
    gen = torch.Generator().manual_seed(7)
    query, key = 2 * torch.randn(1, 4, 50, 8, generator=gen), torch.randn(1, 2, 50, 8, generator=gen)
    rows = [40, 41, 45, 48, 49]
    spans = [("needle", 10, 14), ("past-end", 45, 60)]
    got = rows_attention_stats(query[:, :, 40:], key, rows, 8**-0.5, spans, 3, block_size=7, max_rows=2)
    ref = naive_attention_stats(query, key, torch.tensor(rows), 8**-0.5, [("needle", 10, 14), ("past-end", 45, 50)], 3)
    for name in ("entropy", "sink_mass", "topk_weight", "mean_distance"):
        torch.testing.assert_close(getattr(got, name).double(), getattr(ref, name), atol=1e-5, rtol=1e-6)
    for name in ("needle", "past-end"):
        torch.testing.assert_close(got.span_mass[name].double(), ref.span_mass[name], atol=1e-5, rtol=0)
    assert torch.equal(got.topk_pos, ref.topk_pos)


class _FakeAttention(torch.nn.Module):
    """What sdpa_attention_forward reads off an attention module."""

    is_causal = True
    num_key_value_groups = 2


def test_hand_built_needle_through_the_attention_function():
    """Every query e0; needle keys carry logit 3 on e0, others 0: needle mass = n e^3 / (n e^3 + (q + 1 - n))."""
    t, start, n, logit, scaling = 64, 20, 6, 3.0, 0.25
    query = torch.zeros(1, 4, t, 4)
    query[..., 0] = 1.0
    key = torch.zeros(1, 2, t, 4)
    key[..., 1] = 1.0
    key[:, :, start : start + n] = torch.tensor([logit / scaling, 0.0, 0.0, 0.0])
    value = torch.randn(1, 2, t, 4, generator=torch.Generator().manual_seed(8))
    module = _FakeAttention()
    recorder = AttentionRecorder(stride=16, top_k=n)
    recorder.set_sequence([("needle", start, start + n)], [start + n - 1])
    ACTIVE[id(module)] = recorder.attention_callback(3)
    try:
        output, _ = ALL_ATTENTION_FUNCTIONS[recall_name("sdpa")](module, query, key, value, None, scaling=scaling)
    finally:
        ACTIVE.pop(id(module))
    direct, _ = ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, None, scaling=scaling)
    assert torch.equal(output, direct)
    got = recorder.collect()
    qpos = got.query_positions
    assert qpos.tolist() == [15, 25, 31, 47, 63]
    others = (qpos.double() + 1 - n).clamp(min=0)
    expected = torch.where(qpos >= start, n * math.exp(logit) / (n * math.exp(logit) + others), torch.zeros(1).double())
    mass = got.span_mass["needle"][0, 0].double()  # [Q, Hq]
    torch.testing.assert_close(mass, expected[:, None].expand_as(mass), atol=1e-6, rtol=0)
    assert set(got.topk_pos[0, 0, -1, 0].tolist()) == set(range(start, start + n))
