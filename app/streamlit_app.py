"""Dashboard entry: `workbench app DIR` runs `streamlit run app/streamlit_app.py -- --trace DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pages import figures/ data modules beside this file


def trace_path() -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace", default=None)
    args, _ = parser.parse_known_args()
    return args.trace or st.session_state.get("trace_path") or ""


st.set_page_config(page_title="workbench", layout="wide")
st.session_state["trace_path"] = st.sidebar.text_input("Trace folder", value=trace_path())
pages = [st.Page("app_pages/expert_load.py", title="Expert routing", default=True)]
pages.append(st.Page("app_pages/attention.py", title="Attention recall"))
pages.append(st.Page("app_pages/deltanet.py", title="DeltaNet state"))
st.navigation(pages).run()
