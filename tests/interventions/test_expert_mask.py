"""Prune what-if masking: masked experts never chosen, weights renormalised over the rest, masking nothing is the
identity, the model restored after exit and after an error, unsupported routers refused."""

import pytest
import torch
from support.model_state import model_state

from workbench.capture import CaptureSettings, capture
from workbench.interventions import ExpertMaskError, mask_experts

pytestmark = pytest.mark.filterwarnings("ignore")


def _ids(model, length=41, seed=7):
    return torch.randint(0, model.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("model_name", ["tiny_next", "tiny_35moe"])
def test_masking_nothing_is_identity(model_name, request):
    model = request.getfixturevalue(model_name)
    ids = _ids(model)
    plain = model(input_ids=ids, use_cache=False).logits
    with mask_experts(model, {layer: [] for layer in range(model.config.num_hidden_layers)}):
        masked = model(input_ids=ids, use_cache=False).logits
    assert torch.equal(plain, masked)


def test_masked_experts_never_chosen_and_weights_renormalise(tiny_next):
    ids = _ids(tiny_next)
    with capture(tiny_next, CaptureSettings(router_logits=True)) as run:
        tiny_next(input_ids=ids, use_cache=False)
        before = run.collect("routing")
    # mask each layer's 5 most chosen experts: the routing must change
    masked = {layer: torch.bincount(before.topk_ids[row].reshape(-1).long(), minlength=32).topk(5).indices.tolist()
              for row, layer in enumerate(before.layers)}
    with mask_experts(tiny_next, masked), capture(tiny_next, CaptureSettings(router_logits=True)) as run:
        logits = tiny_next(input_ids=ids, use_cache=False).logits
        after = run.collect("routing")
    for row, layer in enumerate(after.layers):
        chosen = set(after.topk_ids[row].reshape(-1).tolist())
        assert not chosen & set(masked[layer])
        torch.testing.assert_close(after.topk_weights[row].sum(-1), torch.ones(ids.numel()), rtol=0, atol=1e-6)
        # reference: softmax over the unmasked experts only, top-k, renormalised
        keep = torch.ones(32, dtype=torch.bool)
        keep[masked[layer]] = False
        raw = before.router_logits[row].double()  # the same input reaches layer 0 only; later layers differ
        if row == 0:
            probs = torch.softmax(raw[:, keep], dim=-1)
            top = probs.topk(tiny_next.config.num_experts_per_tok, dim=-1)
            assert torch.equal(torch.arange(32)[keep][top.indices], after.topk_ids[row].long())
            torch.testing.assert_close(after.topk_weights[row].double(), top.values / top.values.sum(-1, keepdim=True),
                                       rtol=1e-5, atol=1e-6)
    assert not torch.equal(logits, tiny_next(input_ids=ids, use_cache=False).logits)


def test_model_restored_after_exit_and_error(tiny_next):
    ids = _ids(tiny_next)
    plain = tiny_next(input_ids=ids, use_cache=False).logits
    state = model_state(tiny_next)
    with mask_experts(tiny_next, {0: [1, 2, 3]}):
        assert model_state(tiny_next) != state
    assert model_state(tiny_next) == state
    with pytest.raises(RuntimeError, match="boom"):
        with mask_experts(tiny_next, {0: [1, 2, 3], 3: [0]}):
            raise RuntimeError("boom")
    assert model_state(tiny_next) == state
    assert torch.equal(tiny_next(input_ids=ids, use_cache=False).logits, plain)


def test_bad_masks_refused(tiny_next):
    with pytest.raises(ExpertMaskError, match="expert ids must lie in"):
        with mask_experts(tiny_next, {0: [32]}):
            pass
    with pytest.raises(ExpertMaskError, match="leaves fewer than top_k"):
        with mask_experts(tiny_next, {0: list(range(29))}):
            pass
    with pytest.raises(ExpertMaskError, match="layer 9 has no router"):
        with mask_experts(tiny_next, {9: [0]}):
            pass


def test_sigmoid_router_refused():
    from workbench.adapters.tiny import build_family_model

    model = build_family_model("deepseek_v3")
    with pytest.raises(ExpertMaskError, match="supports softmax top-k routers"):
        with mask_experts(model, {1: [0]}):
            pass


@pytest.mark.parametrize("family", ["qwen3_moe", "olmoe", "mixtral"])
def test_other_softmax_families_identity_and_mask(family):
    """Masking nothing reproduces each softmax router's own output (renormalising or not); masking changes it."""
    from workbench.adapters import adapter_for_config
    from workbench.adapters.tiny import build_family_model

    model = build_family_model(family).eval()
    ids = _ids(model, length=19)
    layers = sorted(adapter_for_config(model.config).routers(model))
    plain = model(input_ids=ids, use_cache=False).logits
    with mask_experts(model, {layer: [] for layer in layers}):
        assert torch.equal(model(input_ids=ids, use_cache=False).logits, plain)
    with mask_experts(model, {layers[0]: [0, 1]}):
        assert not torch.equal(model(input_ids=ids, use_cache=False).logits, plain)
