"""Dashboard entry: `workbench app DIR` runs `streamlit run <package>/app/streamlit_app.py -- --trace DIR`.
The sidebar filters live here, so they persist across pages; each page is one file in app_pages/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench.app.state import sidebar

PAGES = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="workbench", layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "overview.py", title="Overview", default=True),
    st.Page(PAGES / "routing.py", title="Routing & sparsity"),
    st.Page(PAGES / "token_explorer.py", title="Token explorer"),
    st.Page(PAGES / "deltanet.py", title="DeltaNet state"),
    st.Page(PAGES / "attention.py", title="Attention recall"),
    st.Page(PAGES / "long_context.py", title="Long context"),
    st.Page(PAGES / "mtp.py", title="Multi-token prediction"),
    st.Page(PAGES / "generation.py", title="Generation"),
    st.Page(PAGES / "attribution.py", title="Attribution"),
    st.Page(PAGES / "sparsity.py", title="Sparsity probes"),
    st.Page(PAGES / "compare.py", title="Compare runs"),
])
sidebar()
navigation.run()
