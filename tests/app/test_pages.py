"""Every dashboard page under Streamlit's AppTest on the hand-written trace (tests/hand_trace.py): no exception,
its main figure present; with each table missing, the page shows its empty state instead."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hand_trace import write_hand_trace
from support.app_pages import ENTRY, chart_titles
from support.app_pages import run_page as open_page

# page -> words in the title of the figure that must be on it
PAGES = {
    "overview": "Bytes on disk per token",
    "routing": "Expert load per layer",
    "token_explorer": "per token at layer",
    "deltanet": "State norm ||S_t||_F per layer, mean over heads",
    "attention": "Needle mass on 'needle'",
    "long_context": "Exact-match accuracy (model)",
    "compare": "Routing agreement on the same tokens",
}
# table left out -> (page, words of its empty state)
EMPTY = {
    "routing": ("routing", "no `routing` table"),
    "deltanet": ("deltanet", "no `deltanet` table"),
    "attention": ("attention", "Needle mass"),  # gates and retrieval still show; checked below
    "needle_sweep": ("long_context", "no `needle_sweep` table yet"),
    "tokens": ("token_explorer", "no `tokens` table"),
}


RUN_A = "20260101T000000Z-aaaaaaaa"  # the run holding every table (run B, the newest, has tokens and routing)


def run_page(path, page: str, run_id: str | None = RUN_A) -> AppTest:
    return open_page(path, page, run_id)


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_its_main_figure(hand_trace, page):
    at = run_page(hand_trace[0], page)
    assert not at.exception, [e.value for e in at.exception]
    assert any(PAGES[page] in title for title in chart_titles(at)), chart_titles(at)


@pytest.mark.parametrize("table", list(EMPTY))
def test_page_shows_its_empty_state_without_its_table(tmp_path, table):
    write_hand_trace(tmp_path / "trace", skip=(table,))
    page, words = EMPTY[table]
    at = run_page(tmp_path / "trace", page)
    assert not at.exception, [e.value for e in at.exception]
    if table == "attention":  # the page still shows gates and retrieval, but no span-mass figure
        assert not any(words in title for title in chart_titles(at))
        assert any("Retrieval score" in title for title in chart_titles(at))
    else:
        assert any(words in info.value for info in at.info), [info.value for info in at.info]
        assert not any(PAGES[page] in title for title in chart_titles(at))


def test_compare_page_needs_two_runs(tmp_path):
    from workbench.trace import TraceWriter
    import pyarrow as pa

    with TraceWriter(tmp_path / "one", run_id="20260101T000000Z-cccccccc") as writer:
        writer.add("tokens", pa.table({"seq_id": ["s"], "position": [0], "token_id": [1], "token": ["a"],
                                       "label": [None]}))
        writer.commit({"model": {"source": "x", "architecture": "x", "config_hash": "x", "config": {}},
                       "prompts": [{"id": "s"}], "num_tokens": 1, "layer_kinds": [], "moe_layers": []})
    at = run_page(tmp_path / "one", "compare", run_id=None)
    assert not at.exception and any("No other run" in info.value for info in at.info)


def test_sidebar_filters_persist_across_pages(hand_trace):
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.session_state["trace_path"] = str(hand_trace[0])
    at.run()
    at.sidebar.selectbox(key="run_id").set_value(RUN_A).run()
    at.sidebar.selectbox(key="label").set_value("x").run()
    at.switch_page("app_pages/routing.py").run()
    assert at.session_state["label"] == "x"
    at.switch_page("app_pages/deltanet.py").run()
    assert at.session_state["label"] == "x" and not at.exception
    assert at.selectbox(key="deltanet_seq").options == ["s0"]  # the label filter reached the page


def test_old_schema_folder_opens_with_a_note(tmp_path):
    from workbench.trace.folder import DESCRIPTOR

    path = tmp_path / "old"
    write_hand_trace(path)
    (path / DESCRIPTOR).write_text(json.dumps({"format": "workbench-trace", "schema_version": "1.0"}))
    at = run_page(path, "overview")
    assert not at.exception
    assert any("read-only" in warning.value for warning in at.warning)


@pytest.fixture(scope="module")
def with_probe_run(tmp_path_factory):
    """The hand trace plus a newest run holding only a needle_sweep (as a probe writes it: no tokens)."""
    import pyarrow as pa

    from workbench.trace import TraceWriter

    path = tmp_path_factory.mktemp("probe") / "trace"
    write_hand_trace(path)
    with TraceWriter(path, run_id="20260101T000002Z-dddddddd") as writer:
        writer.add("needle_sweep", pa.Table.from_pylist([{
            "context_length": 64, "needle_depth": 0.5, "layer": 3, "layer_kind": "full_attention", "head": 0,
            "prompts": 1, "exact_match": 1.0, "needle_mass": 0.5, "deltanet_needle_contribution": None,
            "state_retention": None, "state_retention_ratio": None}]))
        writer.commit({"model": {"source": "probe", "architecture": "x", "config_hash": "x", "config": {}},
                       "prompts": [], "num_tokens": 0, "layer_kinds": [], "moe_layers": []})
    return path


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_copes_with_a_run_without_tokens(with_probe_run, page):
    at = run_page(with_probe_run, page, run_id="20260101T000002Z-dddddddd")  # the newest run: the probe's
    assert not at.exception, [e.value for e in at.exception]
    if page == "long_context":
        assert any("Exact-match accuracy (model)" in title for title in chart_titles(at))


def test_long_context_draws_one_heatmap_per_layer_the_value_applies_to(hand_trace):
    at = run_page(hand_trace[0], "long_context")
    at.radio(key="sweep_value").set_value("state_retention").run()
    assert not at.exception
    sweep = [title for title in chart_titles(at) if title.endswith("state retention (mean over heads)")]
    assert sweep == ["L1 (linear_attention): state retention (mean over heads)"]  # attention layer 3 has none
    assert any(title.startswith("Where the 'needle' reaches") for title in chart_titles(at))  # beside it


def test_every_figure_downloads_as_png_and_standalone_html(hand_trace):
    at = run_page(hand_trace[0], "attention")
    charts = at.get("plotly_chart")
    buttons = at.get("download_button")
    assert len(buttons) == len(charts) >= 4  # one HTML download under each figure
    for chart in charts:
        config = json.loads(chart.proto.config)
        assert config["toImageButtonOptions"]["format"] == "png"  # the figure's camera button saves a PNG


def test_every_page_renders_a_real_model_trace(tmp_path, next_checkpoint):
    """End to end: `workbench trace` of the tiny Qwen3-Next checkpoint with attention and DeltaNet capture and a
    needle span, then every page without an exception."""
    from typer.testing import CliRunner

    from workbench.cli import app

    prompts = tmp_path / "prompts.jsonl"
    text = "the pass key is 4 2 . filler text goes on here . what is the pass key ? 4 2"
    prompts.write_text(json.dumps({"id": "p1", "text": text, "label": "passkey", "spans": [
        {"name": "needle", "start": 16, "end": 19}, {"name": "answer", "start": len(text) - 3, "end": len(text),
                                                     "query": True}]}) + "\n")
    out = tmp_path / "trace"
    result = CliRunner().invoke(app, ["trace", "--model", str(next_checkpoint), "--prompts", str(prompts), "--out",
                                      str(out), "--attention", "--attention-stride", "8", "--deltanet"])
    assert result.exit_code == 0, result.output
    for page in PAGES:
        at = run_page(out, page, run_id=None)
        assert not at.exception, (page, [e.value for e in at.exception])
        if page not in ("long_context", "compare"):  # no needle_sweep, one run: their empty states
            assert any(PAGES[page] in title for title in chart_titles(at)), (page, chart_titles(at))


def test_sidebar_opens_on_the_newest_of_the_fullest_runs(with_probe_run):
    """A folder ending with a probe's summary run (no tokens, one table) opens on run A, the run holding every
    table, not on the newest run; among equally full runs the newest wins."""
    from workbench.app.state import default_run

    at = run_page(with_probe_run, "routing", run_id=None)
    assert not at.exception
    assert at.sidebar.selectbox(key="run_id").value == RUN_A
    assert chart_titles(at)  # the routing page draws, where the probe run would only show its empty state
    runs = [{"run_id": "old", "tables": ["tokens", "routing"]}, {"run_id": "new", "tables": ["routing", "tokens"]},
            {"run_id": "probe", "tables": ["needle_sweep"]}]
    assert default_run(runs) == "new"


def test_the_sidebar_labels_layers_and_heads_from_the_run_facts():
    """The shipped MTP run (nano: 6 DeltaNet + 2 attention layers, 8 value heads, routing of the MTP layer under
    index 8): layer choices carry their kind, the MTP layer is labelled as such, heads go up to the most of any kind."""
    nano = Path(__file__).resolve().parents[2] / "datasets" / "nano"
    at = run_page(nano, "routing", run_id="20261202T010421Z-a8e2a1b1")
    assert not at.exception
    assert at.sidebar.multiselect(key="layers").options == [
        "L0 DeltaNet", "L1 DeltaNet", "L2 DeltaNet", "L3 attention", "L4 DeltaNet", "L5 DeltaNet", "L6 DeltaNet",
        "L7 attention", "MTP"]
    assert at.sidebar.selectbox(key="head").options == ["all", *map(str, range(8))]
