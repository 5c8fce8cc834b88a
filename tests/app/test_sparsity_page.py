"""The Sparsity probes page and its queries on a hand-written run whose aggregates are worked out here."""

import json
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

import workbench.app
from workbench.analysis.db import Scope, TraceDB
from workbench.analysis.sparsity import expert_saliency, pruning_curves, shared_expert_share
from workbench.trace import TraceWriter

ENTRY = str(Path(workbench.app.__file__).resolve().parent / "streamlit_app.py")
RUN = "20260101T000000Z-dddddddd"


@pytest.fixture(scope="module")
def probe_trace(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparsity") / "trace"
    with TraceWriter(root, run_id=RUN) as writer:
        # expert 1 at layer 0: s0 3 tokens reap 1.0, s1 1 token reap 5.0 -> weighted (3 + 5) / 4 = 2.0
        writer.add("expert_saliency", pa.table({
            "seq_id": ["s0", "s0", "s1"], "layer": [0, 0, 0], "expert": [1, 2, 1], "count": [3, 2, 1],
            "gate_mean": [0.5, 0.25, 0.1], "output_norm_mean": [2.0, 1.0, 50.0], "reap": [1.0, 0.25, 5.0]}))
        writer.add("shared_expert_share", pa.table({
            "seq_id": ["s0", "s1"], "layer": [0, 0], "tokens": [3, 1], "share_mean": [0.2, 0.6],
            "shared_norm_mean": [1.0, 1.0], "routed_norm_mean": [4.0, 1.0]}))
        writer.add("label_divergence", pa.table({
            "model": ["trained", "random_init"], "layer": [0, 0], "label_a": ["x", "x"], "label_b": ["y", "y"],
            "js_bits": [0.5, 0.1]}))
        writer.add("label_experts", pa.table({
            "model": ["trained"], "layer": [0], "label": ["x"], "rank": [1], "expert": [1], "fraction": [0.5],
            "lift": [2.0]}))
        writer.add("vocab_specialisation", pa.table({
            "model": ["trained"], "layer": [0], "token_id": [5], "token": ["w5"], "count": [6], "top_expert": [1],
            "top_share": [0.95], "experts": [2]}))
        rows = [("none", 0.0, "a", "exact_match", 1.0), ("none", 0.0, "heldout_loss", "loss", 1.0),
                ("reap", 0.5, "a", "exact_match", 0.75), ("reap", 0.5, "heldout_loss", "loss", 1.5),
                ("random", 0.5, "a", "exact_match", 0.25), ("random", 0.5, "heldout_loss", "loss", 3.0)]
        writer.add("expert_pruning", pa.table({
            "intervention": ["expert_mask"] * 6, "criterion": [r[0] for r in rows], "fraction": [r[1] for r in rows],
            "masked_per_layer": [0 if r[0] == "none" else 2 for r in rows], "suite": [r[2] for r in rows],
            "n": [4] * 6, "metric": [r[3] for r in rows], "value": [r[4] for r in rows]}))
        writer.commit({"model": {"source": "hand", "architecture": "x", "config_hash": "x", "config": {}},
                       "prompts": [], "num_tokens": 0, "layer_kinds": ["linear_attention"], "moe_layers": [0]})
    return root


def test_saliency_and_share_weighted_by_tokens(probe_trace):
    db = TraceDB(probe_trace)
    saliency = expert_saliency(db, Scope(RUN)).set_index("expert")
    assert saliency.loc[1, "count"] == 4 and saliency.loc[1, "reap"] == pytest.approx(2.0)
    assert saliency.loc[1, "output_norm_mean"] == pytest.approx((3 * 2.0 + 50.0) / 4)
    share = shared_expert_share(db, Scope(RUN)).iloc[0]
    assert share.tokens == 4 and share.share_mean == pytest.approx((3 * 0.2 + 0.6) / 4)


def test_pruning_curves_start_at_the_baseline(probe_trace):
    curves = pruning_curves(TraceDB(probe_trace), Scope(RUN))
    reap = curves[curves.criterion == "reap"]
    assert reap.fraction.tolist() == [0.0, 0.5] and reap.accuracy.tolist() == [1.0, 0.75]
    assert reap.loss.tolist() == [1.0, 1.5]
    assert "none" not in set(curves.criterion)


def test_page_renders(probe_trace):
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.session_state["trace_path"] = str(probe_trace)
    at.run()
    at.switch_page("app_pages/sparsity.py").run()
    assert not at.exception, [e.value for e in at.exception]
    titles = []
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    for words in ("Expert saliency per layer", "Shared expert's share", "JS divergence between labels",
                  "INTERVENTION (experts masked)"):
        assert any(words in t for t in titles), titles


def test_page_names_runs_holding_the_probe_tables_this_run_lacks(tmp_path):
    """A run with saliency only, beside the probe run: the page shows its saliency and names the run with the
    label-divergence and pruning tables."""
    root = tmp_path / "trace"
    with TraceWriter(root, run_id=RUN) as writer:
        writer.add("label_divergence", pa.table({"model": ["trained"], "layer": [0], "label_a": ["x"],
                                                 "label_b": ["y"], "js_bits": [0.5]}))
        writer.commit({"model": {"source": "hand", "architecture": "x", "config_hash": "x", "config": {}},
                       "prompts": [], "num_tokens": 0, "layer_kinds": [], "moe_layers": []})
    saliency_run = "20260101T000001Z-eeeeeeee"
    with TraceWriter(root, run_id=saliency_run) as writer:
        writer.add("expert_saliency", pa.table({
            "seq_id": ["s0"], "layer": [0], "expert": [1], "count": [3], "gate_mean": [0.5],
            "output_norm_mean": [2.0], "reap": [1.0]}))
        writer.commit({"model": {"source": "hand", "architecture": "x", "config_hash": "x", "config": {}},
                       "prompts": [], "num_tokens": 0, "layer_kinds": ["linear_attention"], "moe_layers": [0]})
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.session_state["trace_path"] = str(root)
    at.run()
    at.sidebar.selectbox(key="run_id").set_value(saliency_run).run()
    at.switch_page("app_pages/sparsity.py").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    assert any(f"label_divergence: {RUN}" in c for c in captions), captions
    assert not any("expert_pruning" in c for c in captions)  # no run holds it
