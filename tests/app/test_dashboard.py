"""The dashboard page renders a real trace (Streamlit AppTest) and its figures hold the trace's numbers."""

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory, tiny_next, tokenizer):
    from workbench.adapters import get_adapter
    from workbench.loading import LoadedModel
    from workbench.prompts import Prompt
    from workbench.tracing import trace_prompts

    out = tmp_path_factory.mktemp("dash")
    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    trace_prompts(loaded, [Prompt("one", "routing is fun", "prose"), Prompt("two", "1+1=2", "math")], out, progress=False)
    return out


def _plotly_array(value):
    """Plotly may ship arrays as {'dtype', 'bdata' (base64)}."""
    import base64

    import numpy as np

    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_page_renders_heatmap_and_tokens(trace_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=60)
    at.session_state["trace_path"] = str(trace_dir)
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Expert routing"]
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    assert "4 layers" not in at.caption[0].value and "busiest slot" in at.caption[0].value
    at.selectbox[1].set_value("two").run()
    assert not at.exception
    at.slider[0].set_value((1, 3)).run()
    assert not at.exception
    import json

    figure = json.loads(at.get("plotly_chart")[1].proto.spec)
    positions = {int(x) for trace in figure["data"] for x in _plotly_array(trace["x"])}
    assert positions == {1, 2, 3}


def test_page_reports_bad_folder(tmp_path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=60)
    at.session_state["trace_path"] = str(tmp_path)
    at.run()
    assert at.error and "not a workbench trace folder" in at.error[0].value


def test_heatmap_figure_holds_load(trace_dir):
    import sys

    sys.path.insert(0, str(APP))
    from figures import expert_load_heatmap

    from workbench.analysis.routing import expert_load, load_matrix
    from workbench.trace import open_trace

    load = expert_load(open_trace(trace_dir).read("routing"), 32)
    figure = expert_load_heatmap(load)
    z = figure.data[0].z
    assert z.shape == (4, 32)
    assert abs(z.sum(axis=1) - 1).max() < 1e-9
    assert (z == load_matrix(load).to_numpy()).all()
