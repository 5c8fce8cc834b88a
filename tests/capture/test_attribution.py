"""Direct logit attribution: the components of every family sum to the model's own logit (and logit difference),
every remainder is ~0 (the head split and the expert split account for their blocks' writes), an expert's value
equals a hand computation from its weights, logits stay bit-identical, and the CLI writes the table."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from workbench.adapters.tiny import build_family_model
from workbench.capture import CaptureSettings, SequenceInfo, capture
from workbench.doctor import families
from workbench.inputs.spans import TokenSpan


def attribute(model, ids, foil: int = -1, span=(8, 12)):
    settings = CaptureSettings(routing=False, attribution=True, attribution_foil_id=foil)
    with torch.no_grad(), capture(model, settings) as run:
        run.begin_sequence(SequenceInfo("s", ids.shape[1], [TokenSpan("answer", 0, 0, *span)],
                                        token_ids=ids[0].numpy()))
        logits = model(input_ids=ids, use_cache=False).logits
        return run.collect("attribution"), logits


@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("foil", [-1, 5], ids=["logit", "logit-diff"])
def test_components_sum_to_the_models_logit(family, foil):
    model = build_family_model(family, seed=1).eval()
    ids = torch.randint(3, model.config.get_text_config().vocab_size, (1, 12), generator=torch.Generator().manual_seed(0))
    record, logits = attribute(model, ids, foil)
    positions, targets = list(range(7, 11)), ids[0, 8:12]
    assert record.positions.tolist() == positions and record.targets.tolist() == targets.tolist()
    own = logits[0, positions].double().gather(-1, targets[:, None]).squeeze(-1)
    if foil >= 0:
        own = own - logits[0, positions, foil].double()
    np.testing.assert_allclose(record.model_logit, own.numpy(), atol=1e-6)
    np.testing.assert_allclose(record.totals(), record.model_logit, atol=2e-6, rtol=1e-5)
    rests = [np.abs(v).max() for c, v in zip(record.component, record.values) if c.endswith("_rest")]
    assert max(rests) < 1e-6  # heads sum to the mixer's write, shared + routed experts to the MoE block's
    assert "embedding" in record.component and any(c.endswith("_head") for c in record.component)


def test_an_experts_value_equals_a_hand_computation(tiny_next):
    """Qwen3-Next experts: e(x) = down_e (silu(gate_e x) * up_e x) from the fused weights; value = s w (e . g u)."""
    ids = torch.randint(3, tiny_next.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(1))
    record, _ = attribute(tiny_next, ids)
    layer = 3
    seen = {}
    layer_module = tiny_next.model.layers[layer]
    hooks = [layer_module.mlp.register_forward_pre_hook(lambda m, a: seen.update(x=a[0])),
             tiny_next.model.norm.register_forward_pre_hook(lambda m, a: seen.update(h=a[0])),
             layer_module.mlp.gate.register_forward_hook(lambda m, a, out: seen.update(w=out[1], e=out[2]))]
    with torch.no_grad():
        tiny_next(input_ids=ids, use_cache=False)
    for hook in hooks:
        hook.remove()
    p = 2  # attributed position index: position 9, target ids[0, 10]
    position, target = 9, int(ids[0, 10])
    experts = layer_module.mlp.experts
    x = seen["x"][0, position].double()
    h = seen["h"][0, position].double()
    eps = tiny_next.model.norm.eps
    gain = 1 + tiny_next.model.norm.weight.double()  # Qwen3-Next's RMSNorm: x * (1 + w)
    read = gain * tiny_next.lm_head.weight[target].double()
    scale = 1 / torch.sqrt(h.pow(2).mean() + eps)
    weights, chosen = seen["w"].view(1, 12, -1)[0, position], seen["e"].view(1, 12, -1)[0, position]
    for j, expert in enumerate(chosen.tolist()):
        torch.set_grad_enabled(False)
        gate_up = experts.gate_up_proj[expert].double() @ x
        gate, up = gate_up.chunk(2)
        out = experts.down_proj[expert].double() @ (torch.nn.functional.silu(gate) * up)
        want = float(scale * weights[j].double() * (out @ read))
        row = [i for i, (lay, comp, exp) in enumerate(zip(record.layer, record.component, record.expert))
               if lay == layer and comp == "expert" and exp == expert][0]
        assert record.values[row][p] == pytest.approx(want, rel=1e-4, abs=1e-7)
        assert record.weights[row][p] == pytest.approx(float(weights[j]), rel=1e-6)
    torch.set_grad_enabled(True)


def test_attribution_leaves_logits_bit_identical(tiny_next):
    ids = torch.randint(3, tiny_next.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = tiny_next(input_ids=ids, use_cache=False).logits
    _, traced = attribute(tiny_next, ids)
    assert torch.equal(plain, traced)


def test_cli_writes_the_attribution_table(tmp_path, next_checkpoint):
    from workbench.cli import build_app
    from workbench.trace import open_trace

    text = "the pass key is 123 . what is the pass key ? the pass key is 123"
    start = text.rindex("123")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "k", "text": text, "spans": [{"name": "answer", "start": start,
                                                                        "end": start + 3}]}) + "\n")
    out = tmp_path / "t"
    result = CliRunner().invoke(build_app(), ["trace", "--model", str(next_checkpoint), "--dtype", "float32",
                                              "--prompts", str(prompts), "--attribution", "--attribution-foil-id", "7",
                                              "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = open_trace(out).read("logit_attribution").to_pandas()
    tokens = open_trace(out).read("tokens").to_pandas().sort_values("position")
    spans = open_trace(out).read("spans").to_pandas().iloc[0]
    assert sorted(rows.position.unique()) == list(range(spans.start_token - 1, spans.end_token - 1))
    assert (rows.groupby("position").target_token_id.first().tolist()
            == tokens.token_id.tolist()[spans.start_token:spans.end_token])
    assert (rows.foil_token_id == 7).all()
    sums = rows.groupby("position").agg(total=("value", "sum"), model=("model_logit", "first"))
    np.testing.assert_allclose(sums.total, sums.model, atol=1e-4)
    assert set(rows.component) >= {"embedding", "attention_head", "deltanet_head", "shared_expert", "expert"}
