"""Read a trace folder: run manifests, and each table as a pyarrow dataset of committed runs only."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from .folder import RUNS, read_descriptor
from .schema import RUN_ID, TABLES, table_schema


class Trace:
    """A trace folder opened for reading. `read("routing", run_id=..., columns=[...])` returns an Arrow
    table; `duckdb()` returns a connection with one view per table."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"trace folder {self.root} does not exist")
        self.descriptor = read_descriptor(self.root)

    def manifests(self) -> list[dict]:
        """Committed runs, oldest first."""
        paths = sorted((self.root / RUNS).glob("*.json"))
        return [json.loads(p.read_text()) for p in paths]

    def run_ids(self) -> list[str]:
        return [m["run_id"] for m in self.manifests()]

    def tables(self) -> list[str]:
        return [t for t in TABLES if (self.root / t).is_dir()]

    def files(self, table: str) -> list[str]:
        """Parquet files of the table's committed runs (a partition without a manifest never committed)."""
        committed = set(self.run_ids())
        return [
            str(p)
            for p in sorted((self.root / table).glob("run_id=*/*.parquet"))
            if p.parent.name.split("=", 1)[1] in committed
        ]

    def dataset(self, table: str) -> ds.Dataset:
        """The table's hive-partitioned dataset, restricted to committed runs."""
        partitioning = ds.partitioning(pa.schema([pa.field(RUN_ID.name, RUN_ID.type)]), flavor="hive")
        full_schema = table_schema(table).append(pa.field(RUN_ID.name, RUN_ID.type))
        return ds.dataset(self.files(table), schema=full_schema, format="parquet", partitioning=partitioning,
                          partition_base_dir=str(self.root / table))

    def read(self, table: str, run_id: str | None = None, columns: list[str] | None = None,
             filter: ds.Expression | None = None) -> pa.Table:
        if table not in self.tables():
            raise ValueError(f"trace {self.root} has no {table!r} table; it has: {', '.join(self.tables())}")
        expression = filter
        if run_id is not None:
            if run_id not in self.run_ids():
                raise ValueError(f"no committed run {run_id!r} in {self.root}; runs: {', '.join(self.run_ids())}")
            by_run = ds.field(RUN_ID.name) == run_id
            expression = by_run if expression is None else expression & by_run
        return self.dataset(table).to_table(columns=columns, filter=expression)

    def duckdb(self):
        """An in-memory DuckDB connection with a view per table over the committed runs' files
        (DuckDB reads float16 columns as FLOAT)."""
        import duckdb

        connection = duckdb.connect()
        for table in self.tables():
            files = self.files(table)
            if files:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                connection.execute(
                    f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true)"
                )
        return connection

    def size_bytes(self, table: str) -> int:
        """Bytes on disk of the table's committed runs (uncommitted partitions are not counted)."""
        return sum(Path(p).stat().st_size for p in self.files(table))


def open_trace(root: str | Path) -> Trace:
    return Trace(root)
