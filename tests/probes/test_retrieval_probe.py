"""The greedy copy probe against the model's own eager attention weights, step by step (no cache)."""

import numpy as np
import pytest
import torch

from workbench.adapters import get_adapter
from workbench.analysis.retrieval import copy_hits
from workbench.loading import LoadedModel
from workbench.inputs.prompts import Prompt
from workbench.probes.retrieval import copy_with_attention, trace_retrieval
from workbench.trace import open_trace

pytestmark = pytest.mark.filterwarnings("ignore")


@torch.inference_mode()
def _eager_copy(model, prompt_ids, steps, targets=None):
    """Reference: recompute the whole sequence each step with eager attention and output_attentions=True;
    argmax over keys of the last row of every full-attention layer's map."""
    model.set_attn_implementation("eager")
    try:
        context, produced, keys = list(prompt_ids), [], []
        for step in range(steps):
            out = model(input_ids=torch.tensor([context]), use_cache=False, output_attentions=True)
            maps = [w for w in out.attentions if w is not None]  # [1, H, T, T] per full-attention layer
            keys.append(np.stack([w[0, :, -1].argmax(-1).numpy() for w in maps]))  # [L, H]
            token = int(out.logits[0, -1].argmax()) if targets is None else int(targets[step])
            produced.append(token)
            context.append(token)
    finally:
        model.set_attn_implementation("sdpa")
    return np.stack(keys), np.asarray(produced), np.asarray(context[:-1])


@pytest.mark.parametrize("forced", [False, True], ids=["greedy", "teacher-forced"])
def test_copy_matches_eager_reference(tiny_next, tokenizer, forced):
    ids = tokenizer("xx abcabcabc yy abc", add_special_tokens=False)["input_ids"]
    needle = (3, 12)
    targets = ids[3:9] if forced else None
    got = copy_with_attention(tiny_next, ids, needle, steps=6, targets=targets)
    keys, produced, context = _eager_copy(tiny_next, ids, 6, targets)
    assert got.layers == [3]
    assert np.array_equal(got.produced, produced)
    assert np.array_equal(got.context_ids, context)
    assert np.array_equal(got.argmax_keys, keys)
    expected = copy_hits(keys, context, produced, needle)
    assert np.array_equal(got.hits, expected)
    if forced:  # the hand-picked needle repeats 'abc': some head copies at some step
        assert got.hits.any()
    assert tiny_next.config._attn_implementation == "sdpa"


def test_trace_retrieval_writes_scores(tmp_path, tiny_next, tokenizer):
    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    text = "filler abcabc more filler . the answer abcabc"
    prompts = [Prompt("p0", text, "passkey", {"spans": [{"name": "needle", "start": 7, "end": 13},
                                                        {"name": "answer", "start": 39, "end": 45}],
                                              "prompt": text[:39]})]
    summary = trace_retrieval(loaded, prompts, tmp_path / "t", steps=4, teacher_forcing=True, progress=False)
    trace = open_trace(tmp_path / "t")
    table = trace.read("retrieval").to_pandas()
    assert len(table) == 4 and set(table.steps) == {4}
    np.testing.assert_allclose(table.score.to_numpy(), summary.scores["p0"].reshape(-1), atol=1e-7)
    assert (table.hits / 4 == table.score).all()
    spans = trace.read("spans").to_pandas().set_index("span")
    assert spans.loc["needle", ["start_token", "end_token"]].tolist() == [7, 13]
    assert spans.loc["answer", "start_token"] == spans.loc["answer", "end_token"] == 39  # past the prompt
    assert trace.read("tokens").num_rows == 39
    assert trace.manifests()[-1]["probe"]["teacher_forcing"] is True
