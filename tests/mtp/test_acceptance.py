"""Acceptance bookkeeping on hand-built logits: a stub MTP that copies the trunk's next token is always accepted;
one that copies the actual next-next token is right exactly where the trunk is."""

import pytest
import torch

from workbench.mtp.acceptance import acceptance_rows, position_bucket


def one_hot_logits(ids, vocab=10, scale=20.0):
    return torch.nn.functional.one_hot(torch.tensor(ids), vocab).float() * scale


def test_stub_copying_the_trunk_is_always_accepted():
    ids = torch.tensor([1, 2, 3, 4, 5, 6])
    trunk = one_hot_logits([2, 3, 9, 5, 6, 7])  # the trunk errs at t=2 (predicts 9 for x_3=4)
    mtp = trunk[1:].clone()  # row t drafts exactly what the trunk says at t+1
    rows = acceptance_rows(ids, trunk, mtp)
    assert rows["position"] == [0, 1, 2, 3, 4]
    assert rows["accepted"] == [True] * 5
    assert rows["trunk_next"] == [3, 9, 5, 6, 7]
    # draft vs the actual x_{t+2} = [3, 4, 5, 6]; the draft copied the trunk's mistake at row 1
    assert rows["draft_correct"] == [True, False, True, True, None]
    assert all(p > 0.99 for p in rows["p_accepted"])


def test_stub_copying_the_truth_is_accepted_where_the_trunk_is_right():
    ids = torch.tensor([1, 2, 3, 4, 5, 6])
    trunk = one_hot_logits([2, 3, 9, 5, 6, 7])
    mtp = one_hot_logits([3, 4, 5, 6, 0])  # the true x_{t+2}; last row has no truth, drafts 0
    rows = acceptance_rows(ids, trunk, mtp)
    assert rows["accepted"] == [True, False, True, True, False]
    assert rows["draft_correct"] == [True, True, True, True, None]
    # uniform-ish check of the probability: MTP puts ~all mass on its draft, so p(trunk_next) ~ 0 where rejected
    assert rows["p_accepted"][1] < 1e-6


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="T-1"):
        acceptance_rows(torch.tensor([1, 2, 3]), torch.zeros(3, 5), torch.zeros(3, 5))


@pytest.mark.parametrize("position,bucket", [(0, "0-64"), (63, "0-64"), (64, "64-256"), (70000, ">=65536")])
def test_position_bucket(position, bucket):
    assert position_bucket(position) == bucket


def test_exact_ties_are_flagged():
    """A row whose trunk (at t+1) or head (at row t) has two equal largest logits is a tie: its argmax is arbitrary."""
    ids = torch.tensor([1, 2, 3, 4])
    trunk = torch.tensor([[0.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 3.0]])  # t=1 ties (row 0)
    mtp = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])  # row 1: head top two 0.5, 0.5 tie
    rows = acceptance_rows(ids, trunk, mtp)
    assert rows["tie"] == [True, True, False]
    assert rows["accepted"] == [True, True, True]  # rows 0 and 1 agree only by how argmax breaks a tie: counted apart
