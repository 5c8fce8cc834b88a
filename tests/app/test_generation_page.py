"""The Generation page and its analyses, on a generation the test writes (the nano, greedy, speculative with the
MTP head): every number checked against a direct pandas computation on the trace's rows."""

import numpy as np
import pandas as pd
import pytest

from workbench.analysis.db import Scope, TraceDB
from workbench.analysis.generation import draft_acceptance, generated_runs, generation_tokens, js_bits, routing_drift
from workbench.analysis.tokens import token_metric
from workbench.app.figures.generation import drift_bars, token_grid
from workbench.capture import CaptureSettings
from workbench.generation import GenerationSettings, generate_prompts
from workbench.inputs.prompts import Prompt
from workbench.loading import load_model
from workbench.trace import open_trace


@pytest.fixture(scope="module")
def generation_trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "trace"
    loaded = load_model("nano", dtype="float32")
    prompts = [Prompt("code", "def total(values):\n"), Prompt("text", "The pass key is 41273. Remember it.")]
    summary = generate_prompts(loaded, prompts, out, CaptureSettings(deltanet=True),
                               GenerationSettings(max_new_tokens=12, speculative="mtp", draft_tokens=2),
                               progress=False)
    return out, summary.run_id


def test_generation_tokens_match_the_rows(generation_trace):
    out, run_id = generation_trace
    db, trace = TraceDB(out), open_trace(out)
    assert generated_runs(db) == [run_id]
    frame = generation_tokens(db, Scope(run_id), "code")
    tokens = trace.read("tokens").to_pandas()
    tokens = tokens[tokens.seq_id == "code"].sort_values("position")
    assert frame.position.tolist() == tokens.position.tolist() and frame.phase.tolist() == tokens.phase.tolist()
    prompt_tokens = trace.manifests()[0]["prompts"][0]["prompt_tokens"]
    assert frame.logprob[:prompt_tokens].isna().all() and (frame.logprob[prompt_tokens:] <= 0).all()
    assert (frame.phase == np.where(frame.position >= prompt_tokens, "decode", "prefill")).all()
    assert (frame.phase == "decode").sum() == 12


def test_routing_drift_and_drafts_match_the_rows(generation_trace):
    out, run_id = generation_trace
    db, trace = TraceDB(out), open_trace(out)
    drift = routing_drift(db, Scope(run_id)).set_index("layer")
    routing = trace.read("routing").to_pandas().explode("topk_ids")
    for layer, group in routing.groupby("layer"):
        counts = group.groupby(["phase", "topk_ids"]).size().unstack(0, fill_value=0)
        p, q = counts["prefill"] / counts["prefill"].sum(), counts["decode"] / counts["decode"].sum()
        assert drift.js_bits[layer] == pytest.approx(js_bits(p, q))
        assert drift.decode_selections[layer] == counts["decode"].sum()
    assert js_bits(pd.Series([0.5, 0.5]), pd.Series([0.5, 0.5])) == 0
    assert js_bits(pd.Series([1.0, 0.0]), pd.Series([0.0, 1.0])) == pytest.approx(1.0)
    drafts = trace.read("drafts").to_pandas()
    by_draft = draft_acceptance(db, Scope(run_id)).set_index("draft")
    assert by_draft.drafts.tolist() == drafts.groupby("draft").size().tolist()
    np.testing.assert_allclose(by_draft.accepted, drafts.groupby("draft").accepted.mean())


def test_token_grid_colours_categories_discretely(generation_trace):
    out, run_id = generation_trace
    frame = token_metric(TraceDB(out), Scope(run_id), "code", 3, "top-1 expert")
    figure = token_grid(frame.assign(phase="prefill"), "top-1 expert", "t")
    heat = figure.data[0]
    experts = sorted(set(frame.value.astype(int)))
    assert list(heat.colorbar.ticktext) == [str(e) for e in experts]  # categories, not a continuous scale
    assert heat.zmin == -0.5 and heat.zmax == len(experts) - 0.5
    cells = np.asarray(heat.z, dtype=float).reshape(-1)[: len(frame)]
    assert [experts[int(c)] for c in cells] == frame.value.astype(int).tolist()
    assert drift_bars(routing_drift(TraceDB(out), Scope(run_id))).layout.yaxis.range == (0, 1)


def test_generation_page_renders(generation_trace):
    from test_pages import chart_titles, run_page

    out, run_id = generation_trace
    at = run_page(out, "generation", run_id)
    assert not at.exception, [e.value for e in at.exception]
    titles = chart_titles(at)
    assert any("tokens coloured by" in t for t in titles) and any("Routing drift" in t for t in titles)
    assert any("MTP drafts kept" in t for t in titles)
