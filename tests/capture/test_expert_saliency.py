"""Expert saliency against a reference that runs each expert by hand on the tokens routed to it (tiny models), every
path (the grouped_mm tap, both recomputes, "auto"), and the model's output and state untouched."""

from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
import transformers
import transformers.integrations.moe as moe
from support.model_state import model_state

from workbench.capture import CaptureError, CaptureSettings, capture
from workbench.capture.saliency.expert_tap import tap_unavailable
from workbench.capture.saliency.recorder import expert_outputs

pytestmark = pytest.mark.filterwarnings("ignore")


def _moe_inputs(model, input_ids):
    """Decoder-layer index -> the MoE block's input hidden states [N, H] (a pre-hook; removed after)."""
    seen, handles = {}, []
    for index, layer in enumerate(model.model.layers):
        handles.append(layer.mlp.register_forward_pre_hook(
            lambda module, args, index=index: seen.__setitem__(index, args[0].reshape(-1, args[0].shape[-1]))))
    try:
        logits = model(input_ids=input_ids, use_cache=False).logits
    finally:
        for handle in handles:
            handle.remove()
    return logits, seen


def _reference(model, hidden_by_layer):
    """Per layer: count [E], gate_mean, norm_mean, reap [E] (NaN where never chosen) and the shared share, from the
    router weights and each expert's weights applied by hand in float64."""
    config, refs = model.config, {}
    for index, hidden in hidden_by_layer.items():
        mlp, x = model.model.layers[index].mlp, hidden.double()
        probs = torch.softmax(x @ mlp.gate.weight.double().T, dim=-1)  # [N, E]
        top = probs.topk(config.num_experts_per_tok, dim=-1)
        weights = top.values / top.values.sum(-1, keepdim=True)  # [N, k]
        E = config.num_experts
        count, gate, norm, reap = (torch.zeros(E, dtype=torch.float64) for _ in range(4))
        routed = torch.zeros_like(x)
        for e in range(E):
            tokens, slot = torch.where(top.indices == e)
            if len(tokens) == 0:
                continue
            gate_up = x[tokens] @ mlp.experts.gate_up_proj[e].double().T
            g, u = gate_up.chunk(2, dim=-1)
            out = (F.silu(g) * u) @ mlp.experts.down_proj[e].double().T  # [n_e, H]
            w = weights[tokens, slot]
            count[e], gate[e] = len(tokens), w.mean()
            norm[e], reap[e] = out.norm(dim=-1).mean(), (w * out.norm(dim=-1)).mean()
            routed.index_add_(0, tokens, out * w[:, None])
        s = mlp.shared_expert(hidden).double() * torch.sigmoid(mlp.shared_expert_gate(hidden).double())
        share = (s.norm(dim=-1) / (s.norm(dim=-1) + routed.norm(dim=-1))).mean()
        refs[index] = dict(count=count, gate=gate, norm=norm, reap=reap, share=share)
    return refs


@contextmanager
def experts_implementation(model, name):
    """Run the (session-scoped) model on another experts implementation inside the block."""
    before = model.config._experts_implementation
    model.set_experts_implementation(name)
    try:
        yield
    finally:
        model.set_experts_implementation(before)


def _saliency(model, input_ids, path):
    with capture(model, CaptureSettings(routing=False, expert_saliency=True, expert_saliency_path=path)) as run:
        logits = model(input_ids=input_ids, use_cache=False).logits
        return logits, run.collect("expert_saliency")


def _input_ids(model, tokens=53, seed=5):
    return torch.randint(0, model.config.vocab_size, (1, tokens), generator=torch.Generator().manual_seed(seed))


def _assert_matches(record, refs, tokens):
    assert record.layers == sorted(refs)
    for row, layer in enumerate(record.layers):
        ref, count = refs[layer], record.count[row].double()
        assert torch.equal(count, ref["count"])
        chosen = count > 0
        torch.testing.assert_close(record.gate_sum[row][chosen] / count[chosen], ref["gate"][chosen], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(record.norm_sum[row][chosen] / count[chosen], ref["norm"][chosen], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(record.reap_sum[row][chosen] / count[chosen], ref["reap"][chosen], rtol=1e-4, atol=1e-6)
        assert int(record.shared_tokens[row]) == tokens
        assert abs(float(record.share_sum[row]) / tokens - float(ref["share"])) < 1e-5


def _tap_missing(model) -> str | None:
    """Why the installed transformers has no grouped_mm tap for `model`'s experts, or None. The tap reads inside
    transformers' `use_experts_implementation` expert classes, which older releases (5.17) do not have: there
    "auto" recomputes and "tap" is refused at attach."""
    reason = tap_unavailable(model.model.layers[0].mlp.experts)
    return reason if reason is not None and "use_experts_implementation" in reason else None


def _needs_tap(model) -> None:
    missing = _tap_missing(model)
    if missing is not None:
        pytest.skip(f"transformers {transformers.__version__}: the experts {missing}")


@pytest.mark.parametrize("model_name,path,ran", [
    ("tiny_next", "tap", "tap"), ("tiny_next", "auto", "tap"), ("tiny_next", "grouped", "grouped"),
    ("tiny_next", "loop", "loop"), ("tiny_35moe", "tap", "tap"), ("tiny_35moe", "grouped", "grouped")])
def test_saliency_matches_experts_run_by_hand(model_name, path, ran, request):
    """Per expert: count, mean gate, mean ||e(x)|| and REAP equal a float64 hand run. For the tap this also proves
    its row order: REAP pairs each tapped norm with a gate weight, and a wrong pairing moves the per-expert means."""
    model = request.getfixturevalue(model_name)
    input_ids = _input_ids(model)
    plain, hidden = _moe_inputs(model, input_ids)
    refs = _reference(model, hidden)
    before = model_state(model)
    if _tap_missing(model) is not None and ran == "tap":
        if path == "tap":
            with pytest.raises(CaptureError, match="not a transformers use_experts_implementation class"):
                _saliency(model, input_ids, path)
            assert model_state(model) == before
            return
        ran = "grouped"  # "auto" recomputes where there is nothing to tap
    logits, record = _saliency(model, input_ids, path)
    assert torch.equal(logits, plain)  # observe only
    assert model_state(model) == before
    assert record.path == ran
    _assert_matches(record, refs, input_ids.numel())


def test_tap_restores_grouped_linear_on_exit_and_error(tiny_next):
    """The tap wraps transformers' module global `_grouped_linear`: put back on exit and after an error inside the
    context; nested captures each wrap what they found and unwind to the original."""
    _needs_tap(tiny_next)
    original, input_ids = moe._grouped_linear, _input_ids(tiny_next, 20)
    settings = CaptureSettings(routing=False, expert_saliency=True, expert_saliency_path="tap")
    with capture(tiny_next, settings):
        assert moe._grouped_linear is not original
    assert moe._grouped_linear is original
    with pytest.raises(RuntimeError, match="inside"):
        with capture(tiny_next, settings):
            tiny_next(input_ids=input_ids, use_cache=False)
            raise RuntimeError("error inside the capture")
    assert moe._grouped_linear is original
    with capture(tiny_next, settings) as outer:
        with capture(tiny_next, settings) as inner:
            tiny_next(input_ids=input_ids, use_cache=False)
            inner_record = inner.collect("expert_saliency")
        assert moe._grouped_linear is not original
        outer_record = outer.collect("expert_saliency")
    assert moe._grouped_linear is original
    for name in ("count", "gate_sum", "norm_sum", "reap_sum"):
        assert torch.equal(getattr(inner_record, name), getattr(outer_record, name))


def test_auto_falls_back_to_grouped_on_eager_experts(tiny_next):
    """On the eager experts implementation the tap has nothing to read: "auto" recomputes (still exact), an explicit
    "tap" refuses at attach; switched to eager after attach, "auto" falls back per call and "tap" raises."""
    _needs_tap(tiny_next)
    original, input_ids = moe._grouped_linear, _input_ids(tiny_next)
    plain, hidden = _moe_inputs(tiny_next, input_ids)
    refs = _reference(tiny_next, hidden)
    with experts_implementation(tiny_next, "eager"):
        logits, record = _saliency(tiny_next, input_ids, "auto")
        assert record.path == "grouped"
        torch.testing.assert_close(logits, plain, rtol=1e-5, atol=1e-5)  # eager vs grouped_mm: not bitwise
        _assert_matches(record, refs, input_ids.numel())
        with pytest.raises(CaptureError, match="'tap'.*layer 0's experts run experts implementation 'eager'"):
            _saliency(tiny_next, input_ids, "tap")
    for path, expected in (("auto", "grouped"), ("tap", None)):
        with capture(tiny_next, CaptureSettings(routing=False, expert_saliency=True, expert_saliency_path=path)) as run:
            with experts_implementation(tiny_next, "eager"):
                if expected is None:
                    with pytest.raises(CaptureError, match="did not run transformers' grouped_mm down projection"):
                        tiny_next(input_ids=input_ids, use_cache=False)
                    continue
                tiny_next(input_ids=input_ids, use_cache=False)
            record = run.collect("expert_saliency")
        assert record.path == expected
        _assert_matches(record, refs, input_ids.numel())
    assert moe._grouped_linear is original


def test_tap_unavailable_where_proj_out_is_not_the_expert_output(tiny_next):
    """A post-expert norm changes proj_out after down_proj; expert parallelism leaves sentinel rows in it."""
    _needs_tap(tiny_next)
    experts = tiny_next.model.layers[0].mlp.experts
    assert tap_unavailable(experts) is None
    for attribute, reason in (("has_post_expert_norm", "post_expert_norm"), ("_is_expert_parallel", "expert-parallel")):
        setattr(experts, attribute, True)
        try:
            assert reason in tap_unavailable(experts)
        finally:
            setattr(experts, attribute, False)


def test_paths_agree_and_table_rows(tiny_next):
    """The grouped and loop recomputes give the same per-expert outputs; the table holds one row per chosen expert
    with means = sums / count."""
    from workbench.capture.saliency.tables import saliency_tables

    experts = tiny_next.model.layers[0].mlp.experts
    hidden = torch.randn(29, tiny_next.config.hidden_size, generator=torch.Generator().manual_seed(1))
    ids = torch.randint(0, tiny_next.config.num_experts, (29, 4), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(expert_outputs(experts, hidden, ids, "grouped"), expert_outputs(experts, hidden, ids, "loop"),
                               rtol=1e-5, atol=1e-6)
    input_ids = torch.randint(0, tiny_next.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(4))
    with capture(tiny_next, CaptureSettings(routing=False, expert_saliency=True)) as run:
        tiny_next(input_ids=input_ids, use_cache=False)
        record = run.collect("expert_saliency")
    tables = saliency_tables("s0", record)
    table = tables["expert_saliency"].to_pandas()
    assert len(table) == int((record.count > 0).sum())
    assert table.groupby("layer")["count"].sum().tolist() == [40 * tiny_next.config.num_experts_per_tok] * 4
    first = table.iloc[0]
    expected = float(record.reap_sum[0, int(first.expert)] / record.count[0, int(first.expert)])
    assert abs(first.reap - expected) < 1e-6
    assert len(tables["shared_expert_share"]) == 4


def test_settings_refuse_path_without_saliency():
    with pytest.raises(ValueError, match="expert_saliency_path needs expert_saliency=True"):
        CaptureSettings(expert_saliency_path="loop")
    with pytest.raises(ValueError, match="expert_saliency_path must be one of 'auto', 'tap', 'grouped', 'loop', got 'fast'"):
        CaptureSettings(expert_saliency=True, expert_saliency_path="fast")
    assert CaptureSettings(expert_saliency=True)["expert_saliency"].expert_saliency_path == "auto"
    assert CaptureSettings().to_dict()["expert_saliency_path"] == "auto"
    old_manifest = {**CaptureSettings().to_dict(), "expert_saliency_path": "grouped"}  # the default before "auto"
    assert CaptureSettings.from_dict(old_manifest) == CaptureSettings()
