"""Right-padded batches: every table equals the batch-1 trace of the same prompts, and padding reaches no table.

Why padding on the right is exact (tracing/batching.py docstring): every layer is causal, so a real token never reads a
later one, and padding only ever comes after a row's last real token. The first tests check that claim on the model
itself; the others compare whole traces table by table."""

import pytest
import torch
from table_compare import assert_same_tables, trace_frames

import workbench.capture.attention.recorder
from workbench.adapters import get_adapter
from workbench.capture.attention.recorder import row_groups
from workbench.capture import CaptureSettings
from workbench.loading import LoadedModel
from workbench.inputs.prompts import Prompt
from workbench.trace import open_trace
from workbench.tracing import plan_batches, trace_prompts

TEXT = "the pass key is 12345 . remember it . " * 6
SETTINGS = CaptureSettings(router_logits=True, deltanet=True, deltanet_head_stride=8, attention=True,
                           attention_stride=16, attention_topk=4)


def _prompts():
    """A mix of lengths (5 to 200 tokens with the byte tokenizer; three of 64, which a batch analyses in one attention
    call), spans with a query span, one needle prompt."""
    lengths = [200, 37, 5, 120, 64, 63, 65, 150, 17, 64, 64]
    prompts = [Prompt(f"p{i}", TEXT[:n], "a" if i % 2 else None) for i, n in enumerate(lengths)]
    prompts.append(Prompt("spans", TEXT[:90], "b", {"spans": [{"name": "key", "start": 16, "end": 21},
                                                              {"name": "question", "start": 70, "end": 80, "query": True}]}))
    prompts.append(Prompt("needle", TEXT[:80], "b", {"spans": [{"name": "needle", "start": 16, "end": 21}]}))
    return prompts


@pytest.fixture
def loaded(tiny_next, tokenizer):
    return LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)


def _padded_pair(model):
    """Logits of two right-padded 2-row batches that differ only in row 0's padding (after its 41 real tokens), and
    of row 0's real tokens run alone."""
    torch.manual_seed(3)
    ids = torch.randint(3, 200, (2, 70))
    real = 41
    one, other = ids.clone(), ids.clone()
    other[0, real:] = torch.randint(3, 200, (70 - real,))
    with torch.inference_mode():
        a, b = model(input_ids=one, use_cache=False).logits, model(input_ids=other, use_cache=False).logits
        alone = model(input_ids=ids[:1, :real], use_cache=False).logits
    return a[0], b[0], alone[0], real


def test_right_padding_never_changes_a_real_token(loaded):
    """Logits of the real tokens of a right-padded row: independent of what the padding holds, and equal to the same
    prompt run alone. No information flows from padding: with experts computed token by token (batched_mm) the real
    tokens' logits are bit for bit the same. With the default grouped experts, the padding changes how many tokens
    each expert's matmul holds, and from transformers 5.25 on that changes the round-off (about 1e-7 here): the
    logits then agree to fp32 round-off."""
    model = loaded.model
    default = model.config._experts_implementation
    try:
        model.set_experts_implementation("batched_mm")
        a, b, alone, real = _padded_pair(model)
        assert torch.equal(a[:real], b[:real])
    finally:
        model.set_experts_implementation(default)
    a, b, alone, real = _padded_pair(model)
    torch.testing.assert_close(a[:real], b[:real], rtol=0, atol=1e-6)
    assert not torch.equal(a[real:], b[real:])  # the padding rows themselves do change
    torch.testing.assert_close(a[:real], alone, rtol=0, atol=1e-5)


def test_plan_batches_packs_by_length_and_keeps_alone_prompts_alone():
    lengths = [10, 50, 30, 50, 5]
    assert plan_batches(lengths, None, [False] * 5) == [[0], [1], [2], [3], [4]]
    assert plan_batches(lengths, 100, [False] * 5) == [[1, 3], [2, 0, 4]]
    assert plan_batches(lengths, 100, [False, True, False, False, False]) == [[1], [3, 2], [0, 4]]  # 2 x 50 fits 100, 3 x 50 does not
    assert plan_batches(lengths, 20, [False] * 5) == [[1], [3], [2], [0, 4]]  # a prompt longer than the budget still runs


def test_row_groups_are_runs_of_alike_rows():
    a, b = ([("key", 1, 3)], [2], 10), ([], [], 10)
    assert row_groups([a, a, b, b, b, a]) == [(0, 2), (2, 5), (5, 6)]
    assert row_groups([b]) == [(0, 1)]


@pytest.mark.parametrize("batch_tokens", [256, 1024])
def test_batched_trace_equals_batch_one(loaded, tmp_path, batch_tokens, monkeypatch):
    prompts = _prompts()
    trace_prompts(loaded, prompts, tmp_path / "one", SETTINGS, progress=False)
    groups = []
    monkeypatch.setattr(workbench.capture.attention.recorder, "row_groups",
                        lambda rows: groups.append(row_groups(rows)) or groups[-1])
    summary = trace_prompts(loaded, prompts, tmp_path / "batched", SETTINGS, progress=False, batch_tokens=batch_tokens)
    assert any(b1 - b0 >= 2 for call in groups for b0, b1 in call), groups  # rows of 64 tokens: one attention call
    one, batched = trace_frames(tmp_path / "one"), trace_frames(tmp_path / "batched")
    assert {"routing", "router_logits", "deltanet", "deltanet_heads", "deltanet_head_summary", "attention",
            "attention_gate", "state_recall", "spans", "tokens"} <= set(one)
    assert_same_tables(one, batched)  # ids exact, floats to float32 reassociation (table_compare.py)
    manifest = open_trace(tmp_path / "batched").manifests()[0]
    assert [p["id"] for p in manifest["prompts"]] == [p.id for p in prompts]  # file order, whatever the batches
    assert manifest["batch_tokens"] == batch_tokens and manifest["status"] == "complete"
    # padding never reaches a table: each sequence has exactly its own tokens, per layer
    lengths = {p["id"]: p["num_tokens"] for p in manifest["prompts"]}
    for table in ("routing", "deltanet", "attention_gate"):
        counts = batched[table].groupby(["seq_id", "layer"]).position.agg(["count", "max"])
        for (seq_id, _), row in counts.iterrows():
            assert row["count"] == lengths[seq_id] and row["max"] == lengths[seq_id] - 1, (table, seq_id)
    assert summary.num_tokens == sum(lengths.values())


def test_prefetched_keeps_order_raises_in_place_and_stops_when_closed():
    """Batches tokenised on a background thread: the same items in the same order; a bad prompt's error arrives
    after every batch before it; closing early stops the producer instead of draining the prompts."""
    import threading
    import time
    from contextlib import closing

    from workbench.tracing import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield from (1, 2)
        raise ValueError("prompt 'bad' tokenizes to no tokens")

    got = []
    with pytest.raises(ValueError, match="'bad'"):
        for item in prefetched(failing(), depth=4):
            got.append(item)
    assert got == [1, 2]

    produced = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    with closing(prefetched(endless(), depth=2)) as items:
        assert next(items) == 0
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 4  # stopped: at most depth + the item in hand + the one it could not hand over
    assert not any(t.name == "workbench-tokenize" for t in threading.enumerate())
