"""Every family on a checkpoint the test writes: it loads through the real path, routing matches transformers' own
`output_router_logits`, capture leaves logits bit-identical and the model exactly as it was (on exit and after an
error), and delta-rule state norms equal the fp64 scan."""

import pytest
import torch
from support.model_state import model_state

from workbench.capture import CaptureSettings, capture
from workbench.ops.state_norms import naive_state_stats
from workbench.ops.state_norms.kda_naive import naive_kda_state_stats

from workbench.adapters.tiny import FAMILY_CONFIGS

pytestmark = pytest.mark.filterwarnings("ignore")
FAMILIES = list(FAMILY_CONFIGS)
ADAPTER_OF = {"qwen3_5_wrapper": "qwen3_5", "qwen3_5_moe_wrapper": "qwen3_5_moe"}
MOE = [f for f in FAMILIES if f not in ("qwen3_5", "qwen3_5_wrapper")]
HYBRID = ["qwen3_next", "qwen3_5_moe", "qwen3_5", "qwen3_5_wrapper", "qwen3_5_moe_wrapper", "kimi_linear"]


def _ids(vocab=256, batch=2, length=29, seed=7):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def _everything(adapter):
    """Every capture kind the family has, with every option that adds work."""
    hybrid = adapter.linear_attention is not None
    return CaptureSettings(router_logits=adapter.router is not None, routing=True, attention=True, attention_stride=4,
                           deltanet=hybrid, deltanet_heads="per_head" if hybrid else "aggregate")


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_loads_as_its_family_with_the_same_logits(family, family_checkpoints):
    model, folder, loaded = family_checkpoints(family)
    assert loaded.adapter.name == ADAPTER_OF.get(family, family)
    assert type(loaded.model).__name__ == loaded.adapter.architecture
    ids = _ids()
    with torch.no_grad():
        assert torch.equal(loaded.model(input_ids=ids).logits, model(input_ids=ids).logits)
    if family.endswith("_wrapper"):  # the text decoder only: no vision tower loaded
        assert type(model).__name__.endswith("ForConditionalGeneration")
        assert not any("visual" in name for name, _ in loaded.model.named_parameters())
        assert sum(p.numel() for p in loaded.model.parameters()) < sum(p.numel() for p in model.parameters())


def _reference_choice(family_model, layer, logits, k):
    """(ids sorted ascending, weights in that order, probabilities p) in fp64 from the router logits alone, the way
    the family's config says the router chooses (softmax top-k, or sigmoid + bias inside the best groups)."""
    config, router = family_model.config, family_model.model.layers[layer].mlp.gate
    logits = logits.double()
    if getattr(config, "n_group", None) is None:  # softmax families
        p = torch.softmax(logits, -1)
        weights, ids = p.topk(k, -1)
        if getattr(config, "norm_topk_prob", True):  # Mixtral's config has no flag: it always renormalises
            weights = weights / weights.sum(-1, keepdim=True)
    else:  # sigmoid: choose by s + bias inside the topk_group best of n_group groups (group score: its top-2 sum)
        s = torch.sigmoid(logits)
        choice = s + router.e_score_correction_bias.double()
        groups = choice.view(len(s), config.n_group, -1)
        best = groups.topk(2, -1).values.sum(-1).topk(config.topk_group, -1).indices  # [N, topk_group]
        allowed = torch.zeros_like(groups[..., 0], dtype=torch.bool).scatter(1, best, True)
        choice = choice.masked_fill(~allowed.repeat_interleave(groups.shape[-1], 1), float("-inf"))
        ids = choice.topk(k, -1).indices
        weights = s.gather(1, ids)
        weights = weights / weights.sum(-1, keepdim=True) * config.routed_scaling_factor
        p = s / s.sum(-1, keepdim=True)
    order = ids.argsort(-1)
    return ids.gather(1, order), weights.gather(1, order), p


def _router_outputs(model, ids):
    """Each MoE layer's router logits from one plain forward, read by this test's own hooks on the `mlp.gate`
    modules (for releases whose model output has no router_logits)."""
    logits, handles = [], []
    for layer in model.model.layers:
        if hasattr(layer.mlp, "gate"):
            handles.append(layer.mlp.gate.register_forward_hook(lambda module, args, out: logits.append(out[0])))
    try:
        model(input_ids=ids, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return logits


@pytest.mark.parametrize("family", MOE)
def test_routing_matches_output_router_logits(family, family_checkpoints):
    _, _, loaded = family_checkpoints(family)
    model, ids = loaded.model, _ids()
    with torch.no_grad():
        reference = getattr(model(input_ids=ids, output_router_logits=True, use_cache=False), "router_logits", None)
        if reference is None:  # a family that returns no router_logits on this release (Kimi-Linear, DeepSeek-V3
            reference = _router_outputs(model, ids)  # in 5.17): the routers' own outputs, by plain hooks
        with capture(model, CaptureSettings(router_logits=True)) as run:
            model(input_ids=ids, use_cache=False)
            got = run.collect("routing")
    moe_layers = [i for i, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "gate")]
    assert got.layers == moe_layers and len(reference) == len(moe_layers)
    k = model.config.num_experts_per_tok
    for index, (layer, logits) in enumerate(zip(moe_layers, reference)):
        assert torch.equal(got.router_logits[index], logits)
        ref_ids, ref_weights, p = _reference_choice(model, layer, logits, k)
        order = got.topk_ids[index].long().argsort(-1)
        assert torch.equal(got.topk_ids[index].long().gather(1, order), ref_ids)
        torch.testing.assert_close(got.topk_weights[index].gather(1, order).double(), ref_weights, atol=1e-5, rtol=0)
        chosen = p.gather(1, ref_ids)
        left_out = p.scatter(1, ref_ids, -1.0).amax(-1)
        torch.testing.assert_close(got.router_entropy[index].double(), -(p * p.log()).sum(-1), atol=1e-5, rtol=0)
        torch.testing.assert_close(got.topk_mass[index].double(), chosen.sum(-1), atol=1e-5, rtol=0)
        torch.testing.assert_close(got.topk_margin[index].double(), chosen.amin(-1) - left_out, atol=1e-5, rtol=0)
        assert torch.isnan(got.shared_gate[index]).all() == (loaded.adapter.router.shared_expert_gate is None)


def test_dense_hybrid_records_no_routing(family_checkpoints):
    _, _, loaded = family_checkpoints("qwen3_5")
    with torch.no_grad(), capture(loaded.model, CaptureSettings(router_logits=True)) as run:
        loaded.model(input_ids=_ids(), use_cache=False)
        assert run.collect() == {}


@pytest.mark.parametrize("family", FAMILIES)
def test_capture_leaves_logits_bit_identical_and_the_model_restored(family, family_checkpoints):
    _, _, loaded = family_checkpoints(family)
    model, adapter, ids = loaded.model, loaded.adapter, _ids()
    settings = _everything(adapter)
    before = model_state(model, adapter)
    assert before[2] or adapter.linear_attention is None  # a hybrid's kernel globals are part of what is compared
    with torch.no_grad():
        plain = model(input_ids=ids, use_cache=False).logits
        with capture(model, settings, adapter) as run:
            assert model_state(model, adapter) != before
            traced = model(input_ids=ids, use_cache=False).logits
            records = run.collect()
    assert torch.equal(traced, plain)
    assert set(records) == {kind for kind in ("routing", "attention", "deltanet")
                            if kind in run.recorders and (kind != "routing" or adapter.router is not None)}
    assert model_state(model, adapter) == before
    with pytest.raises(RuntimeError, match="inside"), torch.no_grad(), capture(model, settings, adapter):
        model(input_ids=ids, use_cache=False)
        raise RuntimeError("error inside the capture")
    assert model_state(model, adapter) == before


@pytest.mark.parametrize("family", HYBRID)
def test_state_norms_recall_and_snapshots_equal_the_fp64_scan(family, family_checkpoints):
    """Per-head state norms, planted-pair recall and state snapshots of every linear-attention layer against the fp64
    token scan (Gated DeltaNet, or KDA with its per-key-channel decay) run on the kernel inputs the capture saw;
    those inputs reproduce the kernel's output."""
    from workbench.ops.state_norms import state_spectrum
    from workbench.ops.state_norms.kda_readout import naive_kda_readouts

    _, _, loaded = family_checkpoints(family)
    model, adapter = loaded.model, loaded.adapter
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head", state_snapshots=(5, -1))
    ids, pairs = _ids(length=70), torch.tensor([[10, 10], [66, 3]])  # more than one 64-token chunk
    with torch.no_grad(), capture(model, settings, adapter) as run:
        recorder = run.recorder("deltanet")
        recorder.keep_calls = True
        recorder.set_recall_pairs(pairs)
        model(input_ids=ids, use_cache=False)
        got = run.collect("deltanet")
    per_key_channel = adapter.linear_attention.decay == "per_key_channel"
    kernels = dict(model_state(model, adapter)[2])  # the originals, restored
    chunk_kernel = next(v for (file, name), v in kernels.items() if name == adapter.linear_attention.chunk_kernel)
    for index, call in enumerate(recorder.calls):
        assert call.g.dim() == (4 if per_key_channel else 3)
        o, _ = chunk_kernel(call.query, call.key, call.value, g=call.g, beta=call.beta, initial_state=None,
                            output_final_state=False, use_qk_l2norm_in_kernel=call.use_qk_l2norm)
        assert torch.equal(o, call.output[0])
        inputs = (call.key, call.value, call.g, call.beta) if per_key_channel else \
            (call.query, call.key, call.value, call.g, call.beta)
        scan = naive_kda_readouts if per_key_channel else naive_state_stats
        ref = scan(*inputs, None, pairs, [5, 69], use_qk_l2norm=call.use_qk_l2norm)
        norms = got.head_state_norm[index].reshape(ref.state_norm.shape)  # [B, T, H]
        assert ((norms.double() - ref.state_norm).abs().max() / ref.state_norm.abs().max()).item() <= 1e-4
        torch.testing.assert_close(got.state_norm_max[index].double(), ref.state_norm.amax(-1).reshape(-1),
                                   atol=1e-4, rtol=1e-4)
        # [P, B*T, H] against [B, P, T, H]; cos only where the readout has not vanished (||r|| > 1e-3 ||v||): the
        # direction of a vanished readout is round-off (the criterion of tests/ops/test_state_norms.py)
        as_got = lambda x: x.transpose(0, 1).reshape(got.recall_cos[index].shape)  # noqa: E731
        torch.testing.assert_close(got.recall_rel_err[index].double(), as_got(ref.recall_rel_err), atol=1e-4,
                                   rtol=1e-4, equal_nan=True)
        v_norm = call.value.double()[:, pairs[:, 1]].norm(dim=-1)[:, :, None, :]  # [B, P, 1, H]
        visible = as_got(ref.recall_readout_norm > 1e-3 * v_norm)
        assert torch.equal(got.recall_cos[index].isnan(), as_got(ref.recall_cos).isnan())
        torch.testing.assert_close(got.recall_cos[index].double()[visible], as_got(ref.recall_cos)[visible],
                                   atol=1e-4, rtol=1e-4, equal_nan=True)
        eff_rank, top_sv = state_spectrum(ref.snapshot_states.reshape(-1, *ref.snapshot_states.shape[2:]))
        torch.testing.assert_close(got.snapshot_top_sv[index].double(), top_sv, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got.snapshot_eff_rank[index].double(), eff_rank, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("family", ["qwen3_5", "kimi_linear", "deepseek_v3", "mixtral", "olmoe", "qwen3_moe"])
def test_attention_stats_equal_the_models_eager_weights(family, family_checkpoints):
    """Attention stats of every full-attention layer (gated, MLA with per-head keys from the latent, plain GQA)
    against the attention maps the model's own eager path returns."""
    from workbench.ops.attention_stats import stats_from_weights

    _, _, loaded = family_checkpoints(family)
    model, ids, spans = loaded.model, _ids(), [("needle", 5, 11), ("all", 0, 29)]
    settings = CaptureSettings(routing=False, attention=True, attention_stride=4, attention_topk=3)
    with torch.no_grad():
        with capture(model, settings, loaded.adapter) as run:
            run.recorder("attention").set_sequence(spans, [9])
            model(input_ids=ids, use_cache=False)
            got = run.collect("attention")
        model.set_attn_implementation("eager")
        try:
            weights = [w for w in model(input_ids=ids, use_cache=False, output_attentions=True).attentions
                       if w is not None]
        finally:
            model.set_attn_implementation("sdpa")
    kinds = loaded.adapter.layer_kinds(model.config)
    assert got.layers == [i for i, kind in enumerate(kinds) if kind == "full_attention"] and len(weights) == len(got.layers)
    for index, weight in enumerate(weights):
        ref = stats_from_weights(weight, got.query_positions, spans, 3)
        for name in ("entropy", "sink_mass", "topk_weight"):
            torch.testing.assert_close(getattr(got, name)[index].double(), getattr(ref, name), atol=1e-5, rtol=0)
        torch.testing.assert_close(got.span_mass["needle"][index].double(), ref.span_mass["needle"], atol=1e-5, rtol=0)
        assert torch.equal(got.topk_pos[index], ref.topk_pos)


@pytest.mark.parametrize("family", ["qwen3_5", "kimi_linear"])
def test_cached_decode_continues_the_prefills_state(family, family_checkpoints):
    """Prefill then one cached decode step: the recurrent kernel's call carries on from the cached state, so its
    positions continue and its state norms equal the fp64 scan over the whole sequence at that token."""
    _, _, loaded = family_checkpoints(family)
    model, adapter = loaded.model, loaded.adapter
    ids = _ids(batch=1, length=21)
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_heads="per_head")
    with torch.no_grad(), capture(model, settings, adapter) as run:
        recorder = run.recorder("deltanet")
        recorder.keep_calls = True
        cache = model(input_ids=ids[:, :20], use_cache=True).past_key_values
        model(input_ids=ids[:, 20:], past_key_values=cache, use_cache=True)
        got = run.collect("deltanet")
    assert got.positions.tolist() == list(range(21))
    scan = naive_kda_state_stats if adapter.linear_attention.decay == "per_key_channel" else naive_state_stats
    prefill = [c for c in recorder.calls if c.kind == "chunk"]
    decode = [c for c in recorder.calls if c.kind == "recurrent"]
    assert len(prefill) == len(decode) == len(got.layers)
    for index, (first, step) in enumerate(zip(prefill, decode)):
        whole = [torch.cat([getattr(first, n), getattr(step, n)], 1) for n in ("query", "key", "value", "g", "beta")]
        ref = scan(*whole, use_qk_l2norm=first.use_qk_l2norm).state_norm[0]  # [T, H]
        norms = got.head_state_norm[index]  # [21, H]
        assert ((norms.double() - ref).abs().max() / ref.abs().max()).item() <= 1e-4


def test_a_capture_kind_the_family_lacks_fails_at_attach_and_undoes_the_others(family_checkpoints):
    """Routing and attention attach before DeltaNet capture finds no linear-attention layer: the error names the
    family, and what was attached is removed."""
    from workbench.capture import CaptureError

    _, _, loaded = family_checkpoints("olmoe")
    before = model_state(loaded.model, loaded.adapter)
    with pytest.raises(CaptureError, match="olmoe: no linear-attention layer"):
        with capture(loaded.model, CaptureSettings(attention=True, deltanet=True), loaded.adapter):
            pass
    assert model_state(loaded.model, loaded.adapter) == before


def test_sliding_window_attention_is_refused_not_misread(tokenizer):
    """Attention stats read every earlier key; a sliding-window config (Mixtral with sliding_window set) is refused
    instead of reporting mass on keys the model never attends to."""
    from workbench.capture import AttentionCaptureError
    from workbench.adapters.tiny import mixtral_config
    from support.toy import build_model

    config = mixtral_config(len(tokenizer))
    config.sliding_window = 8
    model = build_model(config)
    with pytest.raises(AttentionCaptureError, match="mixtral: attention stats assume full causal attention"):
        with capture(model, CaptureSettings(attention=True)):
            pass
    assert model_state(model)[:2] == (0, "sdpa")
