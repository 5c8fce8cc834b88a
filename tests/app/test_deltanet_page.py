"""The DeltaNet state page renders a real trace (AppTest), and its figures hold the trace's numbers."""

import sys
from pathlib import Path

import numpy as np
import pytest

APP = Path(__file__).resolve().parents[2] / "app"
TEXT = "the pass key is 4711. hay hay hay and more hay after it"
SPANS = [{"name": "needle", "start": 16, "end": 20}]

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory, tiny_next, tokenizer):
    from workbench.adapters import get_adapter
    from workbench.capture import CaptureSettings
    from workbench.loading import LoadedModel
    from workbench.prompts import Prompt
    from workbench.tracing import trace_prompts

    out = tmp_path_factory.mktemp("dash-deltanet")
    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    prompts = [Prompt("hay", TEXT, "passkey", {"spans": SPANS}), Prompt("plain", "no spans here", None)]
    settings = CaptureSettings(deltanet=True, deltanet_head_stride=4, state_snapshots=(10, -1))
    trace_prompts(loaded, prompts, out, settings, progress=False)
    return out


def _figures():
    sys.path.insert(0, str(APP))
    import figures_deltanet

    return figures_deltanet


def test_page_renders_every_section(trace_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=60)
    at.session_state["trace_path"] = str(trace_dir)
    at.run()
    at.switch_page("app_pages/deltanet.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["DeltaNet state"]
    assert [h.value for h in at.subheader] == [
        "State norm per layer", "State norm per head", "Gates: decay and write strength",
        "State recall of planted pairs", "State spectrum at snapshot positions"]
    assert len(at.get("plotly_chart")) == 9
    assert "3 DeltaNet layers" in at.caption[0].value and "Longest memory" in at.caption[1].value
    at.radio[0].set_value("cos_max").run()
    assert not at.exception, at.exception
    next(s for s in at.selectbox if s.label == "Sequence").set_value("plain").run()
    assert not at.exception, at.exception
    assert any("No planted pair" in i.value for i in at.info)


def test_page_without_deltanet_runs_says_how_to_get_them(tmp_path, tiny_next, tokenizer):
    from streamlit.testing.v1 import AppTest

    from workbench.adapters import get_adapter
    from workbench.loading import LoadedModel
    from workbench.prompts import Prompt
    from workbench.tracing import trace_prompts

    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    trace_prompts(loaded, [Prompt("a", "abc")], tmp_path, progress=False)
    at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=60)
    at.session_state["trace_path"] = str(tmp_path)
    at.run()
    at.switch_page("app_pages/deltanet.py").run()
    assert not at.exception and "--deltanet" in at.warning[0].value


def test_figures_hold_the_trace_numbers(trace_dir):
    from workbench.analysis.deltanet import head_summary, layer_head_matrix, recall_curves, sequence_state
    from workbench.trace import open_trace

    figures = _figures()
    trace = open_trace(trace_dir)
    state = sequence_state(trace.read("deltanet"), "hay")
    figure = figures.state_norm_figure(state)
    assert len(figure.data) == 2 * 3  # band edge + mean line per DeltaNet layer
    layer0 = state[state.layer == 0]
    np.testing.assert_array_equal(np.asarray(figure.data[1].y, dtype=np.float32), layer0.state_norm_mean.to_numpy())
    np.testing.assert_array_equal(np.asarray(figure.data[0].y, dtype=np.float32), layer0.state_norm_max.to_numpy())

    raw = trace.read("deltanet_head_summary").to_pandas()
    summary = head_summary(trace.read("deltanet_head_summary"), "hay")
    heatmap = figures.half_life_heatmap(layer_head_matrix(summary, "half_life"))
    z = np.asarray(heatmap.data[0].z, dtype=float)
    assert z.shape == (3, 4)
    expected = raw[raw.seq_id == "hay"].sort_values(["layer", "head"]).half_life.to_numpy().reshape(3, 4)
    np.testing.assert_allclose(z, np.log10(expected), rtol=1e-5)

    curves = recall_curves(trace.read("state_recall"), "hay")
    assert curves.distance.min() == 0 and set(curves.key_pos) == {19}
    recall = figures.recall_figure(curves)
    assert len(recall.data) == 3  # one line per layer (one pair)
    first = curves[curves.layer == 0]
    np.testing.assert_array_equal(np.asarray(recall.data[0].y, dtype=np.float32),
                                  first.rel_err_mean.to_numpy().astype(np.float32))


def test_head_summary_weights_sequences_by_tokens():
    import pyarrow as pa

    from workbench.analysis.deltanet import head_summary

    table = pa.table({"seq_id": ["a", "b"], "layer": [0, 0], "head": [1, 1], "tokens": [10, 30],
                      "state_norm_mean": [1.0, 2.0], "state_norm_max": [1.0, 3.0], "decay_mean": [0.5, 0.9],
                      "beta_mean": [0.2, 0.4], "log_decay_mean": [-0.1, -0.01], "half_life": [6.93, 69.3]})
    both = head_summary(table)
    assert both.tokens.tolist() == [40]
    assert both.state_norm_mean.iloc[0] == pytest.approx(1.75)
    assert both.half_life.iloc[0] == pytest.approx(np.log(2) / ((0.1 * 10 + 0.01 * 30) / 40))
