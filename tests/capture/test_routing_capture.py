"""Routing capture against transformers' own router outputs, and the model left untouched."""

import pytest
import torch

from workbench.adapters import get_adapter
from workbench.capture import CaptureSettings, capture, moe_layers

pytestmark = pytest.mark.filterwarnings("ignore")


def _input_ids(vocab: int, batch: int = 2, length: int = 37):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(3))


def _reference_routing(model, input_ids):
    """Recompute routing from transformers' own output_router_logits=True (softmax over all experts)."""
    out = model(input_ids=input_ids, output_router_logits=True, use_cache=False)
    k = model.config.num_experts_per_tok
    refs = []
    for logits in out.router_logits:  # one [N, E] per MoE layer
        probs = torch.softmax(logits.double(), dim=-1)
        top = probs.topk(k + 1, dim=-1)
        ids = top.indices[:, :k]
        weights = top.values[:, :k] / top.values[:, :k].sum(-1, keepdim=True)
        entropy = -(probs * probs.log()).sum(-1)
        refs.append(dict(ids=ids, weights=weights, entropy=entropy, mass=top.values[:, :k].sum(-1),
                         margin=top.values[:, k - 1] - top.values[:, k], logits=logits))
    return out.logits, refs


@pytest.mark.parametrize("model_name", ["tiny_next", "tiny_35moe"])
def test_capture_matches_router_logits(model_name, request):
    model = request.getfixturevalue(model_name)
    input_ids = _input_ids(model.config.vocab_size)
    _, refs = _reference_routing(model, input_ids)
    with capture(model, CaptureSettings(router_logits=True)) as run:
        model(input_ids=input_ids, use_cache=False)
        got = run.collect("routing")
    assert got.layers == list(range(model.config.num_hidden_layers))
    assert len(refs) == len(got.layers)
    for layer, ref in enumerate(refs):
        assert torch.equal(got.topk_ids[layer], ref["ids"])
        torch.testing.assert_close(got.topk_weights[layer].double(), ref["weights"], atol=1e-6, rtol=0)
        torch.testing.assert_close(got.router_entropy[layer].double(), ref["entropy"], atol=1e-5, rtol=0)
        torch.testing.assert_close(got.topk_mass[layer].double(), ref["mass"], atol=1e-6, rtol=0)
        torch.testing.assert_close(got.topk_margin[layer].double(), ref["margin"], atol=1e-6, rtol=0)
        assert torch.equal(got.router_logits[layer], ref["logits"])


def test_shared_gate_is_sigmoid_of_gate_logit(tiny_next):
    input_ids = _input_ids(tiny_next.config.vocab_size, batch=1)
    seen = {}
    layer = tiny_next.model.layers[1].mlp.shared_expert_gate

    def remember_input(module, args, output):
        seen["x"] = args[0]

    handle = layer.register_forward_hook(remember_input)
    try:
        with capture(tiny_next) as run:
            tiny_next(input_ids=input_ids, use_cache=False)
            got = run.collect("routing")
    finally:
        handle.remove()
    expected = torch.sigmoid(seen["x"].double() @ layer.weight.double().T).squeeze(-1)
    torch.testing.assert_close(got.shared_gate[1].double(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("model_name", ["tiny_next", "tiny_35moe"])
def test_logits_unchanged_with_capture(model_name, request):
    model = request.getfixturevalue(model_name)
    input_ids = _input_ids(model.config.vocab_size)
    plain = model(input_ids=input_ids, use_cache=False).logits
    with capture(model, CaptureSettings(router_logits=True)) as run:
        traced = model(input_ids=input_ids, use_cache=False).logits
        assert run.collect("routing") is not None
    assert torch.equal(traced, plain)


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_no_hook_left_after_exit_and_error(tiny_next):
    before = _hook_count(tiny_next)
    with capture(tiny_next) as run:
        assert _hook_count(tiny_next) == before + 2 * len(moe_layers(tiny_next, run.adapter))
    assert _hook_count(tiny_next) == before
    with pytest.raises(RuntimeError, match="boom"):
        with capture(tiny_next):
            raise RuntimeError("boom")
    assert _hook_count(tiny_next) == before


def test_collect_after_several_calls_concatenates(tiny_next):
    a, b = _input_ids(tiny_next.config.vocab_size, 1, 5), _input_ids(tiny_next.config.vocab_size, 1, 9)
    with capture(tiny_next) as run:
        tiny_next(input_ids=a, use_cache=False)
        first = run.collect("routing")
        assert run.collect("routing") is None
        tiny_next(input_ids=a, use_cache=False)
        tiny_next(input_ids=b, use_cache=False)
        both = run.collect("routing")
    assert both.topk_ids.shape[1] == 14
    assert torch.equal(both.topk_ids[:, :5], first.topk_ids)


def test_dense_layers_are_skipped(tokenizer):
    from support.toy import build_model, qwen3_next_config

    model = build_model(qwen3_next_config(num_layers=4, vocab_size=len(tokenizer), mlp_only_layers=[0, 2]))
    assert sorted(moe_layers(model, get_adapter("Qwen3NextForCausalLM"))) == [1, 3]
    with capture(model) as run:
        model(input_ids=_input_ids(len(tokenizer), 1, 6), use_cache=False)
        assert run.collect("routing").layers == [1, 3]
