"""Cached table loading for the pages (keyed by path and filters; returns read-only copies)."""

from __future__ import annotations

import streamlit as st

from workbench.trace import open_trace


@st.cache_data(show_spinner=False)
def manifests(path: str) -> list[dict]:
    return open_trace(path).manifests()


@st.cache_data(show_spinner=False)
def read_table(path: str, table: str, run_id: str, columns: tuple[str, ...] | None = None):
    return open_trace(path).read(table, run_id=run_id, columns=list(columns) if columns else None)
