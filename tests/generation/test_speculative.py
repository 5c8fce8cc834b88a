"""Self-speculative decoding with the MTP head: greedy output token-identical to plain greedy decoding, a drafts row
for every drafted token, and a rejection rule whose emitted token is distributed exactly as the trunk's."""

import numpy as np
import pytest
import torch

from workbench.capture import CaptureSettings, SequenceInfo, capture
from workbench.generation import GenerationSettings, generate
from workbench.generation.speculative import accept_probability, residual, speculative_generate
from workbench.loading import load_model


def _speculative(model, tokenizer, ids, settings, capture_settings=None):
    with capture(model, capture_settings or CaptureSettings()) as run:
        generation, tables = speculative_generate(model, tokenizer, ids, settings, run, "s", keep_logits=True)
        total = ids.shape[1] + len(generation.token_ids)
        per_token = run.build_tables(run.collect(), [SequenceInfo("s", total)])
    return generation, tables["drafts"].to_pandas(), per_token


@pytest.fixture(scope="module")
def nano():
    return load_model("nano", dtype="float32")


@pytest.mark.parametrize("drafts", [1, 3])
def test_greedy_speculative_equals_plain_greedy_on_the_nano(nano, drafts):
    ids = torch.tensor([nano.tokenizer.encode("def total(values):\n    result = 0\n")])
    settings = GenerationSettings(max_new_tokens=24, speculative="mtp", draft_tokens=drafts)
    plain = generate(nano.model, nano.tokenizer, ids, GenerationSettings(max_new_tokens=24), feed_last=False)
    spec, rows, per_token = _speculative(nano.model, nano.tokenizer, ids, settings)
    assert spec.token_ids.tolist() == plain.token_ids.tolist()
    np.testing.assert_allclose(spec.logprobs, plain.logprobs, atol=1e-4)
    # every drafted token has a row; greedy acceptance = the draft equals the trunk's argmax, and a round stops at
    # its first rejection
    assert (rows.accepted == (rows.draft_token_id == rows.trunk_token_id) & rows.accepted).all()
    for _, group in rows.groupby("round"):
        kept = group.sort_values("draft").accepted.tolist()
        assert kept == sorted(kept, reverse=True)  # True... then False...
        first_rejected = group[~group.accepted]
        if len(first_rejected):
            row = first_rejected.sort_values("draft").iloc[0]
            assert row.draft_token_id != row.trunk_token_id
    assert rows.accepted.any(), "the trained nano's MTP head should get some drafts accepted"
    committed = len(spec.token_ids) - 1  # the first token comes from the prefill
    assert rows.groupby("round").accepted.sum().add(1).sum() >= committed
    assert max(per_token["routing"].column("position").to_pylist()) == ids.shape[1] + len(spec.token_ids) - 1
    assert (rows.mtp_topk_ids.map(len) == nano.model.config.num_experts_per_tok).all()
    assert rows.trunk_topk_ids.map(len).eq(len(set(per_token["routing"].column("layer").to_pylist()))).all()


def test_greedy_speculative_with_random_drafts_on_the_tiny_checkpoint(mtp_checkpoint):
    loaded = load_model(str(mtp_checkpoint), dtype="float32")
    ids = torch.randint(3, loaded.model.config.vocab_size, (1, 7), generator=torch.Generator().manual_seed(1))
    plain = generate(loaded.model, loaded.tokenizer, ids, GenerationSettings(max_new_tokens=10), feed_last=False)
    spec, rows, _ = _speculative(loaded.model, loaded.tokenizer, ids,
                                 GenerationSettings(max_new_tokens=10, speculative="mtp", draft_tokens=2))
    assert spec.token_ids.tolist() == plain.token_ids.tolist() and len(rows) > 0


def test_rejection_rule_emits_the_trunk_distribution():
    """P(emit x) = q(x) min(1, p(x)/q(x)) + P(reject) residual(p, q)(x) = p(x), for random p and q."""
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = torch.softmax(2 * torch.randn(7, generator=gen, dtype=torch.float64), -1)
        q = torch.softmax(2 * torch.randn(7, generator=gen, dtype=torch.float64), -1)
        kept = torch.tensor([q[x] * accept_probability(p, q, x) for x in range(7)], dtype=torch.float64)
        emitted = kept + (1 - kept.sum()) * residual(p, q)
        torch.testing.assert_close(emitted, p, atol=1e-12, rtol=0)
    same = torch.softmax(torch.randn(5, generator=gen, dtype=torch.float64), -1)
    assert all(accept_probability(same, same, x) == 1.0 for x in range(5))


def test_sampled_speculative_is_reproducible_and_sampled(nano):
    ids = torch.tensor([nano.tokenizer.encode("x = ")])
    settings = GenerationSettings(max_new_tokens=12, temperature=1.0, seed=3, speculative="mtp", draft_tokens=2)
    first, rows, _ = _speculative(nano.model, nano.tokenizer, ids, settings)
    again, _, _ = _speculative(nano.model, nano.tokenizer, ids, settings)
    assert first.token_ids.tolist() == again.token_ids.tolist()
    other, _, _ = _speculative(nano.model, nano.tokenizer, ids, GenerationSettings(
        max_new_tokens=12, temperature=1.0, seed=4, speculative="mtp", draft_tokens=2))
    assert other.token_ids.tolist() != first.token_ids.tolist()
    assert ((rows.p_draft > 0) & (rows.p_draft <= 1) & (rows.p_trunk >= 0) & (rows.p_trunk <= 1)).all()
