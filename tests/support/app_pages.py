"""Reading dashboard pages under Streamlit's AppTest: open a page on a trace folder and run, and read back what its
figures hold (the plotly spec each `st.plotly_chart` sends), so tests assert on a page's numbers, not its pixels."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from streamlit.testing.v1 import AppTest

import workbench.app

ENTRY = str(Path(workbench.app.__file__).resolve().parent / "streamlit_app.py")


def run_page(path, page: str, run_id: str | None = None) -> AppTest:
    """Page `page` (a file name in app_pages/, no .py) on trace folder `path`, on run `run_id` (None: the sidebar's
    default run)."""
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.session_state["trace_path"] = str(path)
    at.run()
    if run_id:
        at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    at.switch_page(f"app_pages/{page}.py").run()
    return at


def chart_specs(at: AppTest) -> list[dict]:
    """Every figure of the page as its plotly JSON (data and layout)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def title_of(spec: dict) -> str:
    title = spec.get("layout", {}).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def chart_titles(at: AppTest) -> list[str]:
    return [title_of(spec) for spec in chart_specs(at)]


def decoded(value):
    """A spec value with plotly's typed arrays ({"dtype", "bdata"[, "shape"]}: numpy data base64-encoded) turned
    into lists, nested values too."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        if "shape" in value:
            array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
        return array.tolist()
    if isinstance(value, dict):
        return {key: decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def chart_data(at: AppTest, words: str) -> list[dict]:
    """The traces of the page's first figure whose title contains `words`, typed arrays decoded (AssertionError
    naming the titles when none does)."""
    specs = [spec for spec in chart_specs(at) if words in title_of(spec)]
    assert specs, f"no figure titled with {words!r}: {chart_titles(at)}"
    return decoded(specs[0]["data"])
