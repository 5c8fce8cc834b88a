"""Read a trace folder: run manifests, and each table as a pyarrow dataset or DuckDB view of committed runs only.

Folders of schema 1.2 (current), 1.1 and 1.0 (read-only) open. From 1.1 `run_id` is a column inside every file; in
1.0 only the hive partition (`run_id=<id>` folder) carries it: both readers here give every table a `run_id` column.
1.1 folders read through the 1.2 schema: the DeltaNet decay columns 1.2 replaced by log decays read as null there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from .folder import RUNS, read_descriptor, read_only_note
from .schema import RUN_ID, SCHEMA_VERSION, TABLES, file_schema, table_schema

LEGACY_SPAN_MASS = pa.map_(pa.string(), pa.float32())  # schema 1.0


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class Trace:
    """A trace folder opened for reading. `read("routing", run_id=..., columns=[...])` returns an Arrow
    table; `duckdb()` returns a connection with one view per table."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"trace folder {self.root} does not exist")
        self.descriptor = read_descriptor(self.root)
        self.schema_version: str = self.descriptor["schema_version"]
        self.note: str | None = read_only_note(self.descriptor)  # set for older (read-only) folders
        self.read_only = self.schema_version != SCHEMA_VERSION

    def manifests(self) -> list[dict]:
        """Committed runs, oldest first."""
        paths = sorted((self.root / RUNS).glob("*.json"))
        return [json.loads(p.read_text()) for p in paths]

    def run_ids(self) -> list[str]:
        return [m["run_id"] for m in self.manifests()]

    def run(self, name_or_id: str) -> dict:
        """The manifest of the run with this id, else this name (`--name`, a probe's name), else this id prefix;
        an empty or ambiguous pick raises RunPickError (trace/runs.py) in one line."""
        from .runs import pick_run

        return pick_run(self.manifests(), name_or_id, str(self.root))

    def tables(self) -> list[str]:
        """Tables with a folder in the trace (see `has_rows` for committed files)."""
        return [t for t in TABLES if (self.root / t).is_dir()]

    def has_rows(self, table: str, run_id: str | None = None) -> bool:
        """Whether a committed run (or the given run) has files of the table."""
        return bool(self.files(table, run_id))

    def files(self, table: str, run_id: str | None = None) -> list[str]:
        """Parquet files of the table's committed parts: a partition without a manifest never committed, and a run
        committed in parts (manifest `parts`) shows only the files its manifest lists."""
        listed = {m["run_id"]: (None if "parts" not in m else set(m["parts"].get(table, ()))) for m in self.manifests()}
        if run_id is not None:
            listed = {run_id: listed[run_id]} if run_id in listed else {}
        files = []
        for p in sorted((self.root / table).glob("run_id=*/*.parquet")):
            run = p.parent.name.split("=", 1)[1]
            if run in listed and (listed[run] is None or p.name in listed[run]):
                files.append(str(p))
        return files

    def schema(self, table: str) -> pa.Schema:
        """The table's schema on read: the stored columns with `run_id` first."""
        if self.schema_version != "1.0":  # 1.1 files: columns 1.2 renamed read as null (decay_min, decay)
            return file_schema(table)
        schema = table_schema(table)  # 1.0: no run_id in the files, span masses as a map
        if "span_mass" in schema.names:
            index = schema.get_field_index("span_mass")
            schema = schema.set(index, pa.field("span_mass", LEGACY_SPAN_MASS))
        return schema.insert(0, pa.field(RUN_ID.name, RUN_ID.type, nullable=False))

    def dataset(self, table: str) -> ds.Dataset:
        """The table's hive-partitioned dataset, restricted to committed runs."""
        partitioning = ds.partitioning(pa.schema([pa.field(RUN_ID.name, RUN_ID.type)]), flavor="hive")
        return ds.dataset(self.files(table), schema=self.schema(table), format="parquet", partitioning=partitioning,
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

    def duckdb(self, connection=None):
        """A DuckDB connection (a new in-memory one unless given) with a view per table over the committed runs'
        files. Hive partitioning is on, so `where run_id = ...` skips other runs' files before opening them.
        DuckDB reads float16 columns as FLOAT; in the `attention` view span_mass is a MAP (span_mass['needle'])."""
        import duckdb

        connection = connection or duckdb.connect()
        for table in self.tables():
            if not self.has_rows(table):
                continue
            source = f"read_parquet({_sql_list(self.files(table))}, hive_partitioning = true)"
            select = "*"
            if table == "attention" and self.schema_version != "1.0":
                select = "* REPLACE (map_from_entries(span_mass) AS span_mass)"
            elif table == "deltanet_contribution":
                select = ("* REPLACE (map_from_entries(span_norm_ratio) AS span_norm_ratio, "
                          "map_from_entries(span_projection) AS span_projection)")
            missing = _missing_columns(connection, source, table)
            if missing:  # columns added since the files were written read as NULL, as the pyarrow reader gives them
                select += ", " + ", ".join(missing)
            connection.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {select} FROM {source}")
        return connection

    def size_bytes(self, table: str, run_id: str | None = None) -> int:
        """Bytes on disk of the table's committed runs, or of one run (uncommitted partitions are not counted)."""
        return sum(Path(p).stat().st_size for p in self.files(table, run_id))

    def run_sizes(self) -> dict[str, dict[str, int]]:
        """run_id -> table -> bytes on disk (only the tables a run holds)."""
        sizes: dict[str, dict[str, int]] = defaultdict(dict)
        for run_id in self.run_ids():
            for table in TABLES:
                size = self.size_bytes(table, run_id)
                if size:
                    sizes[run_id][table] = size
        return dict(sizes)


_DUCKDB_TYPES = {pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR", pa.float16(): "FLOAT", pa.float32(): "FLOAT",
                 pa.float64(): "DOUBLE", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT"}


def _missing_columns(connection, source: str, table: str) -> list[str]:
    """`NULL::TYPE AS name` for each scalar column of the table's current schema that its files do not hold (files
    written before a column existed)."""
    present = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    return [f"NULL::{_DUCKDB_TYPES[field.type]} AS {field.name}" for field in file_schema(table)
            if field.name not in present and field.type in _DUCKDB_TYPES]


def open_trace(root: str | Path) -> Trace:
    return Trace(root)
