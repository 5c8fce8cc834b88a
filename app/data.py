"""Cached table loading for the pages (keyed by path and filters; returns read-only copies)."""

from __future__ import annotations

import streamlit as st

from workbench.trace import TraceFolderError, open_trace


@st.cache_data(show_spinner=False)
def manifests(path: str) -> list[dict]:
    return open_trace(path).manifests()


@st.cache_data(show_spinner=False)
def read_table(path: str, table: str, run_id: str, columns: tuple[str, ...] | None = None):
    return open_trace(path).read(table, run_id=run_id, columns=list(columns) if columns else None)


def choose_run(tables: tuple[str, ...], made_with: str, none_message: str) -> tuple[str, dict]:
    """The sidebar's trace folder and a run picked in a selectbox among committed runs holding any of
    `tables` (newest first selected). Stops the page with a message when there is nothing to show."""
    path = st.session_state.get("trace_path", "")
    if not path:
        st.info(f"Enter a trace folder in the sidebar (made with `{made_with}`).")
        st.stop()
    try:
        runs = [m for m in manifests(path) if set(m.get("tables", ())) & set(tables)]
    except (TraceFolderError, FileNotFoundError) as error:
        st.error(str(error))
        st.stop()
    if not runs:
        st.warning(none_message)
        st.stop()
    labels = {m["run_id"]: f"{m['run_id']} · {m['model']['source']} · {m['num_tokens']} tokens" for m in runs}
    run_id = st.selectbox("Run", list(labels), index=len(labels) - 1, format_func=labels.get)
    return path, next(m for m in runs if m["run_id"] == run_id)
