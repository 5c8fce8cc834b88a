"""Activation patching: patching nothing gives the corrupted logits exactly, patching the residual stream of every
layer at every position gives the clean logits exactly (every family); on a model built so that the answer can
only pass through one known layer, the sweep finds that layer and no other (mixer sites) and the DeltaNet state
patch finds the layer whose state carries it; the model is restored on exit and on error."""

import pandas as pd
import pytest
import torch
from support.model_state import hook_count

from workbench.adapters import LINEAR_ATTENTION, adapter_for_config
from workbench.adapters.tiny import build_family_model
from workbench.doctor import families
from workbench.interventions.patching import (Model, PatchingError, Site, patched, patching_sweep, record_clean,
                                              recovery)


def pair(vocab: int, length: int = 12, changed: int = 2, seed: int = 0):
    clean = torch.randint(3, vocab, (1, length), generator=torch.Generator().manual_seed(seed))
    corrupt = clean.clone()
    corrupt[0, changed] = (clean[0, changed] + 7) % (vocab - 3) + 3
    return clean, corrupt


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


@pytest.mark.parametrize("family", families())
def test_nothing_patched_is_corrupted_and_everything_patched_is_clean(family):
    model = build_family_model(family, seed=1).eval()
    adapter = adapter_for_config(model.config)
    wrapped = Model(model, adapter)
    clean, corrupt = pair(model.config.get_text_config().vocab_size)
    hooks = hook_count(model)
    layers = range(len(wrapped.layers))
    sites = [Site("residual", layer) for layer in layers]
    _, values = record_clean(wrapped, clean, sites)
    with patched(wrapped, sites[0], values[sites[0]], slice(0, 0)):  # no position: the corrupted forward as it is
        assert torch.equal(logits(model, corrupt), logits(model, corrupt))
        nothing = logits(model, corrupt)
    assert torch.equal(nothing, logits(model, corrupt))
    from contextlib import ExitStack

    with ExitStack() as stack:
        for site in sites:
            stack.enter_context(patched(wrapped, site, values[site], slice(0, clean.shape[1])))
        everything = logits(model, corrupt)
    assert torch.equal(everything, logits(model, clean))
    with patched(wrapped, sites[-1], values[sites[-1]], slice(0, clean.shape[1])):
        assert torch.equal(logits(model, corrupt), logits(model, clean))  # the last layer's output alone suffices
    assert hook_count(model) == hooks
    other_sites = [Site("mixer", layer) for layer in sorted(wrapped.mixers)[:1]]
    other_sites += [Site("expert", layer, 0) for layer in sorted(wrapped.experts)[:1]]
    _, values = record_clean(wrapped, clean, other_sites)
    plain = logits(model, clean)
    for site in other_sites:  # the clean run's own activation patched into the clean run changes nothing
        with patched(wrapped, site, values[site], slice(0, clean.shape[1])):
            again = logits(model, clean)
        if site.kind == "mixer":
            assert torch.equal(again, plain)
        else:  # output - write + write: equal up to float rounding
            torch.testing.assert_close(again, plain, atol=1e-5, rtol=1e-5)


def one_path_model(tiny_next, through: int):
    """A copy of the tiny Qwen3-Next whose every mixer but layer `through`'s writes nothing (output projection 0):
    information moves between positions only through that layer; a DeltaNet `through` keeps what it writes (decay 1)
    and writes it loudly."""
    import copy

    model = copy.deepcopy(tiny_next).eval()
    with torch.no_grad():
        for index, layer in enumerate(model.model.layers):
            mixer = getattr(layer, "linear_attn", None) or layer.self_attn
            proj = getattr(mixer, "out_proj", None) or mixer.o_proj
            if index != through:
                proj.weight.zero_()
            elif hasattr(mixer, "A_log"):
                mixer.A_log.fill_(-20.0)  # g = -exp(A_log) softplus(...) ~ 0: decay factor ~ 1
                proj.weight.mul_(20.0)
    return model


@pytest.mark.parametrize("through", [1, 3], ids=["deltanet-layer-1", "attention-layer-3"])
def test_the_sweep_finds_the_one_layer_the_answer_passes_through(tiny_next, through):
    model = one_path_model(tiny_next, through)
    adapter = adapter_for_config(model.config)
    clean, corrupt = pair(model.config.vocab_size, changed=2)
    clean_logits, corrupt_logits = logits(model, clean)[0, -1], logits(model, corrupt)[0, -1]
    answer, foil = int(clean_logits.argmax()), int((corrupt_logits - clean_logits).argmax())
    sites = [Site("mixer", layer) for layer in range(4)]
    sites += [Site("state", layer) for layer, kind in enumerate(adapter.layer_kinds(model.config))
              if kind == LINEAR_ATTENTION]
    ranges = [(p, p + 1) for p in range(12)]
    rows, forwards = patching_sweep(model, adapter, clean, corrupt, answer, foil, sites, ranges)
    frame = pd.DataFrame(rows)
    assert forwards == {"clean": 1, "corrupted": 1, "patched": len(frame), "clean_prefixes": 11}
    mixers = frame[frame.site == "mixer"].set_index(["layer", "position_start"]).recovery
    assert mixers[(through, 11)] == pytest.approx(1.0, abs=1e-5)
    assert mixers.drop((through, 11)).abs().max() < 1e-5  # no other layer, no other position
    states = frame[frame.site == "state"].set_index(["layer", "position_start"]).recovery
    if through == 1:  # the state after any token from 5 on (past the conv window over token 2) carries the answer
        assert states.loc[1].loc[5:10].to_numpy() == pytest.approx(1.0, abs=1e-4)
        assert states.loc[1].loc[0:1].abs().max() < 1e-5  # before the changed token: nothing to carry
    assert states.drop(through, level=0, errors="ignore").abs().max() < 1e-5


def test_patching_refuses_bad_sites_and_restores_on_error(tiny_next):
    adapter = adapter_for_config(tiny_next.config)
    wrapped = Model(tiny_next, adapter)
    clean, corrupt = pair(tiny_next.config.vocab_size)
    with pytest.raises(PatchingError, match="layer 3 is not a DeltaNet layer"):
        patching_sweep(tiny_next, adapter, clean, corrupt, 1, 2, [Site("state", 3)], [(0, 1)])
    with pytest.raises(PatchingError, match="same length"):
        patching_sweep(tiny_next, adapter, clean, corrupt[:, :-1], 1, 2, [Site("mixer", 0)], [(0, 1)])
    with pytest.raises(PatchingError, match="site kind must be one of"):
        Site("neuron", 0)
    hooks = hook_count(tiny_next)
    _, values = record_clean(wrapped, clean, [Site("mixer", 0)])
    with pytest.raises(PatchingError, match="same length"):
        with patched(wrapped, Site("mixer", 0), values[Site("mixer", 0)], slice(0, 2)):
            logits(tiny_next, corrupt[:, :-1])
    assert hook_count(tiny_next) == hooks
    assert recovery(1.0, 1.0, 1.0) != recovery(1.0, 1.0, 1.0)  # NaN where clean and corrupted agree
