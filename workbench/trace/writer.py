"""TraceWriter: append one run to a trace folder, all or nothing.

Parts are written into `<out>/.staging/<run_id>/` as they fill; `commit()` moves each table's
partition folder into place (a rename) and writes the manifest last. Earlier runs are never opened
for writing, and an error before commit removes the staging folder and leaves the folder as it was.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .folder import manifest_path, partition_dir, prepare_for_append, staging_dir, write_json_atomic
from .schema import RUN_ID, file_schema, table_schema

ROWS_PER_PART = 1_000_000


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class TraceWriter:
    """with TraceWriter(out) as writer:
        writer.add("tokens", table); ...; writer.commit(manifest)
    Tables must match `schema.table_schema(name)` (columns are cast to it; a missing column raises). The writer
    adds `run_id` as the first column of every file (the one place it is added, for every table)."""

    def __init__(self, root: str | Path, run_id: str | None = None, rows_per_part: int = ROWS_PER_PART):
        self.root = Path(root)
        prepare_for_append(self.root)
        self.run_id = run_id or new_run_id()
        if manifest_path(self.root, self.run_id).exists():
            raise ValueError(f"run {self.run_id} already exists in {self.root}")
        self.rows_per_part = rows_per_part
        self._staging = staging_dir(self.root, self.run_id)
        self._pending: dict[str, list[pa.Table]] = {}
        self._parts: dict[str, int] = {}
        self._committed = False

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self.abort()

    def add(self, table: str, data: pa.Table) -> None:
        schema = table_schema(table)
        missing = set(schema.names) - set(data.column_names)
        if missing:
            raise ValueError(f"table {table!r} is missing columns {sorted(missing)}")
        rows = data.select(schema.names).cast(schema)
        run_id = pa.array([self.run_id] * rows.num_rows, type=RUN_ID.type)
        stored = pa.Table.from_arrays([run_id, *rows.columns], schema=file_schema(table))
        self._pending.setdefault(table, []).append(stored)
        if sum(t.num_rows for t in self._pending[table]) >= self.rows_per_part:
            self._flush(table)

    def _flush(self, table: str) -> None:
        pending = self._pending.pop(table, [])
        if not pending:
            return
        part = self._parts.get(table, 0)
        folder = self._staging / table
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{part:05d}.parquet"
        tmp = folder / f".part-{part:05d}.parquet.tmp"
        pq.write_table(pa.concat_tables(pending), tmp, compression="zstd", compression_level=9)
        os.replace(tmp, path)
        self._parts[table] = part + 1

    def commit(self, manifest: dict) -> Path:
        """Flush, move every table into place, then write the manifest (the commit marker)."""
        for table in list(self._pending):
            self._flush(table)
        moved: list[Path] = []
        try:
            for table in self._parts:
                target = partition_dir(self.root, table, self.run_id)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._staging / table, target)
                moved.append(target)
            manifest = {**manifest, "run_id": self.run_id, "tables": sorted(self._parts)}
            path = manifest_path(self.root, self.run_id)
            write_json_atomic(path, manifest)
        except BaseException:
            for target in moved:  # this run's own partitions only: earlier runs are never touched
                shutil.rmtree(target, ignore_errors=True)
            raise
        self._committed = True
        self._remove_staging()
        return path

    def abort(self) -> None:
        self._pending.clear()
        self._remove_staging()

    def _remove_staging(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)
        try:
            self._staging.parent.rmdir()  # only if no other run is staging
        except OSError:
            pass
