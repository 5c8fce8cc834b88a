"""Dashboard state: the cached DuckDB connection of a trace folder, cached queries keyed by path and filters, the
sidebar filters shared by every page, and figure display with PNG and standalone-HTML downloads."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from workbench.analysis.db import Scope, TraceDB
from workbench.analysis.facts import run_facts
from workbench.trace import TraceFolderError

ALL = "all"


def _runs_stamp(path: str) -> float:
    """Changes when a run is committed (the runs folder's mtime), so the cached connection sees new runs."""
    runs = Path(path) / "runs"
    return runs.stat().st_mtime if runs.is_dir() else 0.0


@st.cache_resource(show_spinner=False, max_entries=4)
def _trace_db(path: str, stamp: float) -> TraceDB:
    return TraceDB(path)  # read-only views: safe to share between sessions (queries use their own cursor)


def trace_db(path: str) -> TraceDB:
    return _trace_db(path, _runs_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _cached(path: str, stamp: float, function: str, scope: tuple, args: tuple, kwargs: tuple):
    module, name = function.rsplit(".", 1)
    target = getattr(importlib.import_module(module), name)
    return target(trace_db(path), Scope(*scope), *args, **dict(kwargs))


def query(function, scope: Scope, *args, **kwargs):
    """Run an analysis function (db, scope, ...) through st.cache_data, keyed by trace path, filters and arguments."""
    path = st.session_state["trace_path"]
    key = (scope.run_id, scope.layers, scope.label, scope.seq_id, scope.positions)
    return _cached(path, _runs_stamp(path), f"{function.__module__}.{function.__name__}", key, args,
                   tuple(sorted(kwargs.items())))


def argv_trace() -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace", default="")
    args, _ = parser.parse_known_args()
    return args.trace


def sidebar() -> None:
    """The filters every page reads from st.session_state (widgets with keys in the entry script, so they persist
    across pages): trace_path, run_id, label, layers, head, positions."""
    st.sidebar.text_input("Trace folder", value=argv_trace(), key="trace_path")
    path = st.session_state["trace_path"]
    if not path:
        return
    try:
        db = trace_db(path)
    except (TraceFolderError, FileNotFoundError) as error:
        st.sidebar.error(str(error))
        return
    if db.trace.note:
        st.sidebar.warning(db.trace.note)
    manifests = {m["run_id"]: m for m in db.trace.manifests()}
    if not manifests:
        return
    labels = {r: f"{r} · {m['model']['source']} · {m['num_tokens']} tok" for r, m in manifests.items()}
    run_ids = list(manifests)
    first = default_run(list(manifests.values()))
    st.sidebar.selectbox("Run", run_ids, index=run_ids.index(first), format_func=labels.get, key="run_id")
    manifest = manifests.get(st.session_state.get("run_id")) or manifests[first]
    prompt_labels = sorted({p.get("label") for p in manifest["prompts"] if p.get("label")})
    st.sidebar.selectbox("Prompt label", [ALL, *prompt_labels], key="label")
    facts = run_facts(manifest)
    st.sidebar.multiselect("Layers (none = all decoder layers)", list(range(len(facts.layer_labels))), key="layers",
                           format_func=facts.label,
                           help="An MTP layer is left out of every per-layer figure unless picked here." if
                           facts.mtp_layers else None)
    st.sidebar.selectbox("Head", [ALL, *range(facts.max_heads)], key="head")
    longest = _longest_sequence(path, manifest["run_id"])
    st.sidebar.slider("Positions [from, to)", 0, longest, (0, longest), key="positions")
    st.session_state["positions_all"] = (0, longest)


def default_run(manifests: list[dict]) -> str:
    """The run the sidebar opens on: the newest of the runs holding the most tables. A folder whose newest runs are
    a probe's summaries (no tokens: datasets/nano ends with one) opens on its fullest trace, so every page has
    something to show; a fresh trace appended to a folder opens on itself."""
    most = max(len(m.get("tables", [])) for m in manifests)
    return [m["run_id"] for m in manifests if len(m.get("tables", [])) == most][-1]


@st.cache_data(show_spinner=False)
def _longest_sequence(path: str, run_id: str) -> int:
    db = trace_db(path)
    if not db.has("tokens"):
        return 1
    longest = db.frame("SELECT max(position) + 1 AS n FROM tokens WHERE run_id = ?", [run_id]).n.iloc[0]
    return 1 if pd.isna(longest) else max(int(longest), 1)  # a run without tokens (a probe's run)


def require_run() -> tuple[TraceDB, dict, Scope]:
    """The page's trace, run manifest and scope from the sidebar; stops the page with a message when unusable."""
    path = st.session_state.get("trace_path", "")
    if not path:
        st.info("Enter a trace folder in the sidebar (made with `workbench trace`).")
        st.stop()
    try:
        db = trace_db(path)
    except (TraceFolderError, FileNotFoundError) as error:
        st.error(str(error))
        st.stop()
    manifests = {m["run_id"]: m for m in db.trace.manifests()}
    if not manifests:
        st.warning(f"{path} holds no committed run yet: `workbench trace --out {path} ...` adds one.")
        st.stop()
    run_id = st.session_state.get("run_id") or list(manifests)[-1]
    manifest = manifests.get(run_id, manifests[list(manifests)[-1]])
    facts = run_facts(manifest)
    st.session_state["trunk_layers"] = facts.trunk_layers if facts.mtp_layers else None
    st.session_state["mtp_layers"] = facts.mtp_layers
    return db, manifest, scope_of(manifest["run_id"])


def mtp_layers() -> tuple[int, ...]:
    """The chosen run's MTP layer indices (labelled 'MTP' on every axis), as require_run found them."""
    return tuple(st.session_state.get("mtp_layers") or ())


def scope_of(run_id: str, seq_id: str | None = None) -> Scope:
    """The sidebar's filters as a Scope of `run_id`. No layer picked = every decoder layer: a run with an MTP layer
    keeps it out of per-layer aggregates unless it is picked in the sidebar."""
    layers = tuple(st.session_state.get("layers") or ()) or st.session_state.get("trunk_layers") or None
    label = st.session_state.get("label")
    window = st.session_state.get("positions")
    if window is not None and tuple(window) == tuple(st.session_state.get("positions_all", ())):
        window = None  # the whole range: no position filter (and one cache key whatever the run's length)
    return Scope(run_id, layers, None if label in (None, ALL) else label, seq_id,
                 tuple(int(x) for x in window) if window else None)


def head_filter(frame):
    """Rows of the sidebar's head (all rows when 'all'); frames with a head column."""
    head = st.session_state.get("head", ALL)
    return frame if head in (ALL, None) or "head" not in frame else frame[frame["head"] == int(head)]


def empty_state(table: str, how: str, db: TraceDB | None = None) -> None:
    """The page's message when the chosen run lacks `table`, naming the runs that have it."""
    others = [m["run_id"] for m in db.trace.manifests() if table in m.get("tables", [])] if db else []
    where = f" Runs with it: {', '.join(others)} (pick one in the sidebar)." if others else ""
    st.info(f"This run has no `{table}` table: {how}{where}")


def show(figure, name: str) -> None:
    """A figure with two downloads: PNG (the camera button on the figure, 2x) and standalone HTML (plotly.js
    inline, opens offline)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    st.plotly_chart(figure, width="stretch", key=f"chart-{slug}",
                    config={"displaylogo": False,
                            "toImageButtonOptions": {"format": "png", "filename": slug, "scale": 2}})
    st.download_button("Download HTML", data=lambda: figure.to_html(include_plotlyjs=True, full_html=True),
                       file_name=f"{slug}.html", mime="text/html", key=f"html-{slug}", on_click="ignore",
                       help="Standalone HTML (plotly.js inline). PNG: the camera button on the figure.")
