"""Everything on at once (routing with logits, DeltaNet state with per-head rows, snapshots and recall,
attention stats with spans, expert saliency through the grouped_mm tap): logits unchanged, the model left exactly as
it was, on exit and on error."""

import pytest
import torch
from support.model_state import model_state

from workbench.capture import CaptureSettings, capture
from workbench.capture.saliency.expert_tap import tap_unavailable

ALL = CaptureSettings(router_logits=True, deltanet=True, deltanet_head_stride=4, state_snapshots=(-1,),
                      attention=True, attention_stride=8, attention_topk=4, expert_saliency=True)


def _model_state(model):
    """What capture could leave behind: hooks, attention implementation, kernel globals, the grouped-linear global."""
    state = model_state(model)
    assert len(state[2]) == 2  # both gated-delta-rule globals of modeling_qwen3_next are compared
    return state


@pytest.fixture
def input_ids(tiny_next):
    return torch.randint(0, tiny_next.config.vocab_size, (1, 45), generator=torch.Generator().manual_seed(5))


def test_all_capture_on_leaves_logits_unchanged(tiny_next, input_ids):
    before = _model_state(tiny_next)
    with torch.no_grad():
        plain = tiny_next(input_ids=input_ids, use_cache=False).logits
        with capture(tiny_next, ALL) as run:
            run.recorder("deltanet").set_recall_pairs(torch.tensor([[10, 10]]))
            run.recorder("attention").set_sequence([("needle", 8, 12)], [30])
            traced = tiny_next(input_ids=input_ids, use_cache=False).logits
            routing, deltanet, attention = run.collect("routing"), run.collect("deltanet"), run.collect("attention")
            saliency = run.collect("expert_saliency")
    assert torch.equal(traced, plain)
    assert routing.router_logits is not None and deltanet is not None and attention is not None
    assert saliency.path == ("grouped" if tap_unavailable(tiny_next.model.layers[0].mlp.experts) else "tap")
    assert _model_state(tiny_next) == before


def test_all_capture_restores_after_an_error(tiny_next, input_ids):
    before = _model_state(tiny_next)
    with pytest.raises(RuntimeError, match="inside"):
        with torch.no_grad(), capture(tiny_next, ALL):
            tiny_next(input_ids=input_ids, use_cache=False)
            raise RuntimeError("error inside the capture")
    assert _model_state(tiny_next) == before
    with torch.no_grad():
        again = tiny_next(input_ids=input_ids, use_cache=False).logits
        with capture(tiny_next, ALL):
            traced = tiny_next(input_ids=input_ids, use_cache=False).logits
    assert torch.equal(traced, again)
