"""TraceWriter: append one run to a trace folder in committed parts.

Rows go into `<out>/.staging/<run_id>/<table>/` as they fill. `commit_part(prompts, manifest)` makes what is
staged durable at once: each staged file is moved into `<table>/run_id=<run_id>/` under a name unique to this
writer (`part-<writer tag>-<n>.parquet`), then the run manifest `runs/<run_id>.json` is rewritten (temporary name,
rename) with the part's files and prompts added. The manifest is the commit marker: readers show a run once it has
a manifest, and only the files its `parts` list, so a crash between the moves and the manifest leaves the part
invisible (`TraceWriter(..., resume=True)` deletes such strays). `finish()` marks the run complete.

Several writers may add parts to one run (Ray workers, a resumed run): the manifest's read-modify-write holds an
exclusive `flock` on the `runs/` folder, and every writer names its files with its own random tag.
A writer that fails before its first part leaves the folder as it was, and removes it when it created it.

Speed: `add` only casts a table whose schema differs from the table's, and a staged file is encoded and written on
a pool of threads (Arrow's Parquet writer releases the GIL), `ROWS_PER_FILE` rows per file, while the caller goes
on; `commit_part` waits for the part's files before it moves them. Parquet: zstd level 3, dictionary encoding and
statistics only where they serve (see `_write_parquet`); bench/bench_parquet_write.py measures the encoding rate.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .folder import (RUNS, check_for_append, manifest_path, partition_dir, prepare_for_append, staging_dir,
                     write_json_atomic)
from .schema import PHASE, RUN_ID, TABLES, file_schema, has_phase, table_schema

ROWS_PER_FILE = 131_072  # a table's pending rows are staged once they reach this many
MIN_ROWS_PER_FILE = 32_768  # one flush is split into up to WRITE_THREADS files of at least this many rows
WRITE_THREADS = max(1, min(12, (os.cpu_count() or 1) - 2))  # leave the main and sink threads a core each
COMPRESSION = {"compression": "zstd", "compression_level": 3}
RUNNING, COMPLETE = "running", "complete"


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def read_manifest(root: Path, run_id: str) -> dict | None:
    path = manifest_path(root, run_id)
    return json.loads(path.read_text()) if path.is_file() else None


@contextmanager
def manifest_lock(root: Path, run_id: str):
    """Exclusive lock for a run manifest's read-modify-write: `flock` on the `runs/` folder itself (processes on one
    host or a shared POSIX file system; no lock file is left behind)."""
    fd = os.open(root / RUNS, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def merge_part(manifest: dict | None, base: dict, prompts: list[dict], files: dict[str, list[str]]) -> dict:
    """The run manifest after one more committed part: `base` (run facts) on first commit, prompts and files added."""
    merged = dict(manifest) if manifest is not None else {**base, "prompts": [], "parts": {}, "status": RUNNING}
    merged["prompts"] = [*merged["prompts"], *prompts]
    if all("num_tokens" in p for p in merged["prompts"]):
        merged["num_tokens"] = sum(p["num_tokens"] for p in merged["prompts"])
    parts = {table: list(names) for table, names in merged.get("parts", {}).items()}
    for table, names in files.items():
        parts[table] = [*parts.get(table, []), *names]
    merged["parts"] = parts
    merged["tables"] = sorted(parts)
    merged["updated"] = datetime.now(timezone.utc).isoformat()
    return merged


class TraceWriter:
    """with TraceWriter(out) as writer:
        writer.add("tokens", table); ...; writer.commit_part(prompt_records, manifest); ...; writer.finish()
    Tables must match `schema.table_schema(name)` (columns are cast to it; a missing column raises unless it is
    nullable, then it is null). The writer
    adds `run_id` as the first column of every file (the one place it is added, for every table).
    `commit(manifest)` = commit_part of everything pending with manifest["prompts"], then finish."""

    def __init__(self, root: str | Path, run_id: str | None = None, rows_per_part: int = ROWS_PER_FILE,
                 resume: bool = False, join: bool = False, tag: str | None = None):
        """resume: continue run `run_id` that stopped (strays of its uncommitted parts are deleted); join: add parts
        to run `run_id` that another writer (the driver of a distributed run) started, touching nothing else;
        tag: names this writer's files (`part-<tag>-<n>.parquet`; default random), unique among the run's writers."""
        self.root = Path(root)
        if resume or join:
            if run_id is None:
                raise ValueError("resume/join need a run_id")
            check_for_append(self.root)
            self.created, self._root_existed = False, True
        else:
            self._root_existed = self.root.exists()
            self.created = prepare_for_append(self.root)
        self.run_id = run_id or new_run_id()
        existing = read_manifest(self.root, self.run_id)
        if resume:
            from ..tracing.manifest import check_resume  # the one resume check; tracing sits above trace: on use

            check_resume(self.root, self.run_id, existing)
            remove_strays(self.root, self.run_id, existing)
        elif existing is not None and not join:
            raise ValueError(f"run {self.run_id} already exists in {self.root}")
        self.rows_per_part = rows_per_part
        self.tag = tag or uuid.uuid4().hex[:8]
        self._staging = staging_dir(self.root, self.run_id) / self.tag
        self._pending: dict[str, list[pa.Table]] = {}
        self._staged: dict[str, list[Path]] = {}
        self._writes: list[Future] = []  # staged files being written on the pool
        self._pool: ThreadPoolExecutor | None = None
        self._count = 0
        self._committed_parts = 0
        self._finished = False

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._finished:
            self.abort()

    @property
    def committed_parts(self) -> int:
        return self._committed_parts

    def add(self, table: str, data: pa.Table) -> None:
        """Stage rows of `table` (its builder's schema; a per-token table may carry a `phase` column, else every row
        is 'prefill')."""
        schema, stored_schema = table_schema(table), file_schema(table)
        phase = None
        if PHASE.name in data.column_names and has_phase(table):
            phase = data.column(PHASE.name)
            data = data.drop_columns([PHASE.name])
        if data.schema.names != schema.names or data.schema.types != schema.types:
            for field in schema:  # a nullable column a builder leaves out is null (e.g. tokens.logprob of a trace)
                if field.nullable and field.name not in data.column_names:
                    data = data.append_column(field, pa.nulls(data.num_rows, field.type))
            missing = set(schema.names) - set(data.column_names)
            if missing:
                raise ValueError(f"table {table!r} is missing columns {sorted(missing)}")
            data = data.select(schema.names).cast(schema)
        run_id = pa.repeat(pa.scalar(self.run_id, RUN_ID.type), data.num_rows)
        columns = [run_id, *data.columns]
        if has_phase(table):
            columns.append(phase if phase is not None else pa.repeat(pa.scalar("prefill", PHASE.type), data.num_rows))
        stored = pa.Table.from_arrays(columns, schema=stored_schema)
        self._pending.setdefault(table, []).append(stored)
        if sum(t.num_rows for t in self._pending[table]) >= self.rows_per_part:
            self._flush(table)

    def _flush(self, table: str) -> None:
        """Stage the table's pending rows as files written in parallel on the pool: one per writer thread, each of at
        least MIN_ROWS_PER_FILE rows (and at most rows_per_part), so the files of the last batch of a run, which
        nothing else overlaps, take a fraction of one file's time."""
        pending = self._pending.pop(table, [])
        if not pending:
            return
        folder = self._staging / table
        folder.mkdir(parents=True, exist_ok=True)
        rows = pa.concat_tables(pending)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="trace-writer")
        size = min(self.rows_per_part, max(MIN_ROWS_PER_FILE, -(-rows.num_rows // WRITE_THREADS)))
        for start in range(0, rows.num_rows, size):
            name = f"part-{self.tag}-{self._count:05d}.parquet"
            self._count += 1
            path = folder / name
            self._writes.append(self._pool.submit(_write_parquet, rows.slice(start, size), path))
            self._staged.setdefault(table, []).append(path)

    def wait_for_writes(self) -> None:
        """Block until every staged file is on disk; re-raises the first write error."""
        writes, self._writes = self._writes, []
        errors = [w.exception() for w in writes]
        for error in errors:
            if error is not None:
                raise error

    def commit_part(self, prompts: list[dict], manifest: dict) -> Path:
        """Flush, move this part's files into place, then add them and `prompts` to the run manifest (the commit
        marker; `manifest` gives the run facts on the first commit). On error, this part's moved files are removed
        and the run stays as it was before the call."""
        for table in list(self._pending):
            self._flush(table)
        self.wait_for_writes()
        moved: list[Path] = []
        files: dict[str, list[str]] = {}
        try:
            for table, staged in self._staged.items():
                target = partition_dir(self.root, table, self.run_id)
                target.mkdir(parents=True, exist_ok=True)
                for path in staged:
                    os.replace(path, target / path.name)
                    moved.append(target / path.name)
                    files.setdefault(table, []).append(path.name)
            with manifest_lock(self.root, self.run_id):
                merged = merge_part(read_manifest(self.root, self.run_id), manifest, prompts, files)
                path = manifest_path(self.root, self.run_id)
                write_json_atomic(path, {**merged, "run_id": self.run_id})
        except BaseException:
            for target in moved:  # this part's own files only: committed parts are never touched
                target.unlink(missing_ok=True)
            raise
        self._staged.clear()
        self._committed_parts += 1
        return path

    def finish(self, order: list[str] | None = None, **fields) -> Path:
        """Mark the run complete (status, finished time, `fields`); `order`: prompt ids in prompts-file order, so the
        manifest lists them as the file does whatever order parts were committed in."""
        with manifest_lock(self.root, self.run_id):
            manifest = read_manifest(self.root, self.run_id)
            if manifest is None:
                raise RuntimeError(f"run {self.run_id} has no committed part to finish")
            if order is not None:
                rank = {seq_id: i for i, seq_id in enumerate(order)}
                manifest["prompts"] = sorted(manifest["prompts"], key=lambda p: rank.get(p["id"], len(rank)))
            manifest.update(fields, status=COMPLETE, finished=datetime.now(timezone.utc).isoformat())
            path = manifest_path(self.root, self.run_id)
            write_json_atomic(path, manifest)
        self._finished = True
        self._close_pool()
        self._remove_staging()
        return path

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def commit(self, manifest: dict) -> Path:
        """All in one: everything pending as one part with manifest["prompts"], then finish."""
        self.commit_part(manifest.get("prompts", []), {k: v for k, v in manifest.items() if k != "prompts"})
        return self.finish()

    def close(self) -> None:
        """Stop writing without finishing: committed parts stay (resumable), anything not committed is dropped."""
        self._finished = True
        self.abort()

    def abort(self) -> None:
        for write in self._writes:
            write.cancel()
        for write in self._writes:
            if not write.cancelled():
                write.exception()  # wait: a file still being written would land in staging after its removal
        self._writes.clear()
        self._close_pool()
        self._pending.clear()
        self._staged.clear()
        self._remove_staging()
        if self.created and self._committed_parts == 0:
            remove_if_empty_trace(self.root, keep_root=self._root_existed)

    def _remove_staging(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)
        for folder in (self._staging.parent, self._staging.parent.parent):  # only if no other writer is staging
            try:
                folder.rmdir()
            except OSError:
                pass


def _write_parquet(rows: pa.Table, path: Path) -> None:
    """Write one staged file atomically (temporary name, then rename). Dictionaries for the string columns only;
    min/max statistics for the string and integer columns only (the keys readers filter on: run_id, seq_id,
    position, layer, head, ...; statistics of the float and list values cost 14% of the write and prune nothing)."""
    strings = [f.name for f in rows.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    keys = strings + [f.name for f in rows.schema if pa.types.is_integer(f.type)]
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(rows, tmp, use_dictionary=strings, write_statistics=keys, **COMPRESSION)
    os.replace(tmp, path)


def remove_strays(root: Path, run_id: str, manifest: dict) -> list[Path]:
    """Delete the run's part files its manifest does not list (moved into place by a part that died before its
    manifest update) and its staging; returns what was deleted."""
    listed = manifest.get("parts", {})
    removed = []
    for table in TABLES:
        folder = partition_dir(root, table, run_id)
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name not in set(listed.get(table, ())):
                path.unlink()
                removed.append(path)
    shutil.rmtree(staging_dir(root, run_id), ignore_errors=True)
    return removed


def remove_if_empty_trace(root: Path, keep_root: bool) -> None:
    """Undo a trace folder this writer created when no run committed anything into it (a failed start): the whole
    folder, or (keep_root: it existed, empty) only what was written into it."""
    if any((root / RUNS).glob("*.json")):
        return
    if (root / ".staging").is_dir() and any((root / ".staging").iterdir()):
        return  # another writer is staging here
    if not keep_root:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
