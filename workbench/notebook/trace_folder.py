"""A trace folder for a notebook: its runs as a table, and one run picked by id, unique id prefix or name.

A run's name is its manifest's `name`, or for a probe's run the probe's name (`needle_sweep`, `expert_pruning`,
...). A pick that matches no run, or several, is refused in one line that lists what would match.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.db import TraceDB
from ..trace.runs import RunPickError, pick_run, run_kind, run_name
from .run import Run


class AmbiguousRun(RunPickError):
    """`trace.run()` without a key on a folder of several runs (the message lists them). A key that matches no run
    or several raises RunPickError (trace/runs.pick_run, the one run picker)."""


class Trace:
    """The committed runs of a trace folder (a snapshot: runs committed later need a fresh `wb.open`).

    trace.runs            DataFrame: run_id, name, kind, model, tokens, tables, status (oldest first)
    trace.run(key)        Run by id, unique id prefix or name (no key: the folder's only run)
    trace.sql(query)      any DuckDB query over the folder's views (one per table), as a DataFrame
    """

    def __init__(self, path: str | Path):
        self.db = TraceDB(path)
        self.path = Path(path)
        self._manifests = self.db.trace.manifests()

    def __repr__(self) -> str:
        return f"<Trace {self.path}: {len(self._manifests)} runs>"

    @property
    def runs(self) -> pd.DataFrame:
        """One row per committed run, oldest first: run_id, name, kind (trace, generation, probe, intervention), model,
        tokens, tables (comma-separated), status."""
        rows = [{"run_id": m["run_id"], "name": run_name(m), "kind": run_kind(m), "model": m["model"]["source"],
                 "tokens": int(m.get("num_tokens", 0)), "tables": ", ".join(m.get("tables", [])),
                 "status": m.get("status")} for m in self._manifests]
        return pd.DataFrame(rows, columns=["run_id", "name", "kind", "model", "tokens", "tables", "status"])

    def run(self, key: str | None = None) -> Run:
        """The run whose id is `key`, else whose name is `key`, else whose id starts with `key`; refused when none
        or several match. Without a key: the folder's only run (refused when it holds several)."""
        if key is None:
            if len(self._manifests) == 1:
                return Run(self.db, self._manifests[0])
            listed = ", ".join(m["run_id"] + (f" ({run_name(m)})" if run_name(m) else "") for m in self._manifests)
            raise AmbiguousRun(f"{self.path} holds {len(self._manifests)} runs, pick one by id, prefix or name: "
                               f"{listed or 'none'}")
        return Run(self.db, pick_run(self._manifests, key, str(self.path)))

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """A DuckDB query over the folder (one view per table, committed runs only) as a DataFrame."""
        return self.db.frame(query, params)
