"""The Attention recall page renders a real trace (AppTest), and its figures hold the trace's numbers."""

import sys
from pathlib import Path

import numpy as np
import pytest

APP = Path(__file__).resolve().parents[2] / "app"
TEXT = "the key 4711 sits in hay, hay and more hay. what is the key? the key"
SPANS = [{"name": "needle", "start": 8, "end": 12}, {"name": "question", "start": 44, "end": 59, "query": True}]

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory, tiny_next, tokenizer):
    from workbench.adapters import get_adapter
    from workbench.capture import CaptureSettings
    from workbench.loading import LoadedModel
    from workbench.prompts import Prompt
    from workbench.retrieval_probe import trace_retrieval
    from workbench.tracing import trace_prompts

    out = tmp_path_factory.mktemp("dash-attn")
    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    prompts = [Prompt("hay", TEXT, "passkey", {"spans": SPANS}), Prompt("plain", "no spans", None)]
    trace_prompts(loaded, prompts, out, CaptureSettings(attention=True, attention_stride=8, attention_topk=4),
                  progress=False)
    trace_retrieval(loaded, prompts[:1], out, steps=3, teacher_forcing=True, progress=False)
    return out


def _attention_run(trace):
    return next(m["run_id"] for m in trace.manifests() if "attention" in m["tables"])


def _figures():
    sys.path.insert(0, str(APP))
    import figures_attention

    return figures_attention


def test_page_renders_every_section(trace_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=60)
    at.session_state["trace_path"] = str(trace_dir)
    at.run()
    at.switch_page("app_pages/attention.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Attention recall"]
    from workbench.trace import open_trace

    by_table = {"attention" if "attention" in m["tables"] else "probe": m["run_id"]
                for m in open_trace(trace_dir).manifests()}
    at.selectbox[0].set_value(by_table["probe"]).run()
    assert [h.value for h in at.subheader] == ["Retrieval heads"] and not at.exception
    assert len(at.dataframe) == 1
    at.selectbox[0].set_value(by_table["attention"]).run()
    assert not at.exception, at.exception
    headers = [h.value for h in at.subheader]
    assert headers == ["Attention mass on a span, per layer and head", "One query's attention over positions",
                       "Output gate per layer and head"]
    assert len(at.get("plotly_chart")) == 4
    assert "Highest: layer 3" in at.caption[0].value
    sequence = next(s for s in at.selectbox if s.label == "Sequence")
    sequence.set_value("plain").run()
    assert not at.exception, at.exception
    assert next(s for s in at.selectbox if s.label == "Query position").options == ["7"]


def test_span_mass_heatmap_holds_the_trace_numbers(trace_dir):
    import pyarrow.compute as pc

    from workbench.analysis.attention import head_span_mass
    from workbench.trace import open_trace

    trace = open_trace(trace_dir)
    run = _attention_run(trace)
    attention, spans = trace.read("attention", run_id=run), trace.read("spans", run_id=run)
    mass = head_span_mass(attention, spans, "needle")
    figure = _figures().span_mass_heatmap(mass, "needle")
    z = np.asarray(figure.data[0].z)
    assert z.shape == (1, 4)
    # by hand: rows of 'hay' at positions >= the needle's end token (12), mean per head
    rows = attention.filter(pc.and_(pc.equal(attention["seq_id"], "hay"), pc.greater_equal(attention["position"], 12)))
    frame = rows.to_pandas()
    frame["needle"] = frame.span_mass.map(lambda pairs: {p["span"]: p["mass"] for p in pairs}["needle"])
    expected = frame.groupby("head").needle.mean().to_numpy()
    np.testing.assert_allclose(z[0], expected, atol=1e-6)


def test_query_figure_uses_log_weights_and_shades_spans(trace_dir):
    from workbench.analysis.attention import query_topk
    from workbench.trace import open_trace

    trace = open_trace(trace_dir)
    run = _attention_run(trace)
    attention = trace.read("attention", run_id=run)
    topk = query_topk(attention, "hay", 31, 3)
    assert len(topk) == 16 and (topk.key_position <= 31).all()
    tokens = trace.read("tokens", run_id=run).to_pandas()
    spans = trace.read("spans", run_id=run).to_pandas()
    figure = _figures().query_attention_figure(topk, tokens[tokens.seq_id == "hay"], spans, 31)
    assert figure.layout.yaxis.type == "log"
    assert len(figure.layout.shapes) == 3  # needle, question, the query line
    weights = np.concatenate([np.asarray(trace_.y) for trace_ in figure.data])
    np.testing.assert_allclose(np.sort(weights), np.sort(topk.weight.to_numpy()))


def test_gate_and_retrieval_figures(trace_dir):
    from workbench.analysis.attention import head_gate_summary
    from workbench.trace import open_trace

    trace = open_trace(trace_dir)
    gate = trace.read("attention_gate", run_id=_attention_run(trace))
    summary = head_gate_summary(gate)
    z = np.asarray(_figures().gate_heatmap(summary).data[0].z)
    per_head = np.stack(gate["head_gate_mean"].to_numpy(zero_copy_only=False)).astype(float).mean(0)
    np.testing.assert_allclose(z[0], per_head, atol=1e-9)
    retrieval = trace.read("retrieval").to_pandas()
    z = np.asarray(_figures().retrieval_heatmap(retrieval).data[0].z)
    np.testing.assert_allclose(z.reshape(-1), retrieval.sort_values(["layer", "head"]).score.to_numpy())
