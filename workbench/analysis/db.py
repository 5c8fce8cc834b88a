"""One DuckDB connection over a trace folder, and the filter every analysis query takes.

`TraceDB(path)` opens the folder (`workbench.trace.Trace`) and creates one view per table; analysis functions
run SQL through `db.frame(sql, params)`, which uses a fresh cursor each call (cursors of one DuckDB database are
safe to use from several threads, the connection itself is not), and return small pandas frames: aggregation
happens in DuckDB, never on a whole table in pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..trace import Trace, open_trace


@dataclass(frozen=True)
class Scope:
    """Which rows an analysis looks at: one run, optionally some layers, one prompt label, one sequence and a
    position window [start, stop). Hashable, so Streamlit caches can key on it."""

    run_id: str
    layers: tuple[int, ...] | None = None
    label: str | None = None
    seq_id: str | None = None
    positions: tuple[int, int] | None = None

    def where(self, alias: str = "", layer: bool = True, position: bool = True) -> tuple[str, list]:
        """SQL conditions (joined by AND) and their parameters for a table aliased `alias`; `layer`/`position`:
        whether the table has those columns."""
        prefix = f"{alias}." if alias else ""
        conditions, params = [f"{prefix}run_id = ?"], [self.run_id]
        if layer and self.layers is not None:
            conditions.append(f"{prefix}layer IN ({', '.join(str(int(x)) for x in self.layers) or 'NULL'})")
        if self.seq_id is not None:
            conditions.append(f"{prefix}seq_id = ?")
            params.append(self.seq_id)
        if self.label is not None:
            conditions.append(f"{prefix}seq_id IN (SELECT DISTINCT seq_id FROM tokens WHERE run_id = ? AND label = ?)")
            params += [self.run_id, self.label]
        if position and self.positions is not None:
            conditions.append(f"{prefix}position >= ? AND {prefix}position < ?")
            params += [int(self.positions[0]), int(self.positions[1])]
        return " AND ".join(conditions), params


class TraceDB:
    """A trace folder as DuckDB views (one per table, over committed runs only; hive partitioning on, so a
    run filter skips other runs' files). Read-only: safe to share (Streamlit `st.cache_resource`)."""

    def __init__(self, path: str | Path):
        self.trace: Trace = open_trace(path)
        self.path = str(Path(path).resolve())
        self._connection = duckdb.connect()
        self.trace.duckdb(self._connection)
        self._tables = frozenset(t for t in self.trace.tables() if self.trace.has_rows(t))

    def has(self, table: str) -> bool:
        return table in self._tables

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        cursor = self._connection.cursor()
        try:
            return cursor.execute(sql, params or []).df()
        finally:
            cursor.close()

    def arrow(self, sql: str, params: list | None = None):
        cursor = self._connection.cursor()
        try:
            return cursor.sql(sql, params=params or None).to_arrow_table()
        finally:
            cursor.close()
