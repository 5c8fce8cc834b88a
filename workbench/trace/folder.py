"""Layout of a trace folder and its version check: the one place that knows where files live.

<out>/workbench.json                      {"format": "workbench-trace", "schema_version": "1.2"}
<out>/runs/<run_id>.json                  run manifest, written last: a run without one never committed
<out>/<table>/run_id=<run_id>/part-*.parquet
<out>/.staging/<run_id>/                  a run being written (moved into place on commit)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .schema import READABLE_VERSIONS, SCHEMA_VERSION

FORMAT = "workbench-trace"
DESCRIPTOR = "workbench.json"
RUNS = "runs"
STAGING = ".staging"


class TraceFolderError(ValueError):
    """The folder is not a trace folder this version can read or append to."""


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON under a temporary name, then rename: a crash never leaves a half file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_descriptor(root: Path, for_append: bool = False) -> dict:
    """The folder's descriptor, after checking it is a trace folder of a version we can read (`for_append`:
    of the version we write)."""
    path = root / DESCRIPTOR
    if not path.is_file():
        raise TraceFolderError(f"{root} is not a workbench trace folder (no {DESCRIPTOR})")
    try:
        descriptor = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise TraceFolderError(f"{path} is not valid JSON: {error}") from None
    if descriptor.get("format") != FORMAT:
        raise TraceFolderError(f"{path}: format is {descriptor.get('format')!r}, expected {FORMAT!r}")
    version = descriptor.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise TraceFolderError(
            f"{root} was written with trace schema version {version}; this workbench reads "
            f"{', '.join(READABLE_VERSIONS)} and writes {SCHEMA_VERSION}. Use a new --out folder (nothing was changed)."
        )
    if for_append and version != SCHEMA_VERSION:
        raise TraceFolderError(
            f"{root} holds trace schema {version}, which this workbench reads but does not append to (it writes "
            f"{SCHEMA_VERSION}). Use a new --out folder (nothing was changed)."
        )
    return descriptor


def read_only_note(descriptor: dict) -> str | None:
    """A one-line note for folders of an older schema (opened read-only), None for the current one."""
    version = descriptor.get("schema_version")
    if version == SCHEMA_VERSION:
        return None
    return (f"trace schema {version} (read-only: new runs need a new folder, schema {SCHEMA_VERSION}); run_id is "
            f"only in the folder names, so HF datasets mixes runs")


def check_for_append(root: Path) -> bool:
    """Check that `root` can take another run without creating anything: True when it is a trace folder already,
    False when it does not exist or is empty (prepare_for_append would create it). Raises TraceFolderError."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise TraceFolderError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        read_descriptor(root, for_append=True)
        return True
    return False


def prepare_for_append(root: Path) -> bool:
    """Create a new trace folder, or check an existing one can take another run. Touches nothing on error.
    Returns True when it created the folder's descriptor (the caller may remove the folder if its run fails)."""
    root = Path(root)
    if check_for_append(root):
        return False
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / DESCRIPTOR, {"format": FORMAT, "schema_version": SCHEMA_VERSION})
    (root / RUNS).mkdir(exist_ok=True)
    return True


def partition_dir(root: Path, table: str, run_id: str) -> Path:
    return root / table / f"run_id={run_id}"


def manifest_path(root: Path, run_id: str) -> Path:
    return root / RUNS / f"{run_id}.json"


def staging_dir(root: Path, run_id: str) -> Path:
    return root / STAGING / run_id
