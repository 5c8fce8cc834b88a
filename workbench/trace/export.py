"""Export trace runs as a dataset others can load without the workbench: `workbench export TRACE_DIR DATASET_DIR`.

A dataset folder is itself a trace folder (so `workbench app DATASET_DIR` opens it) plus a dataset card:
    DATASET_DIR/README.md                          card: YAML `configs` (one per table, data_files
                                                   <table>/*/*.parquet) so `datasets.load_dataset(DIR, "routing")`
                                                   works; a `workbench` YAML block with rows, files and bytes per table
                                                   (computed from the files written); column docs from the schema; per
                                                   run the model, config hash, capture settings, prompts, packages
    DATASET_DIR/workbench.json, runs/<run_id>.json the trace descriptor and the exported runs' manifests
    DATASET_DIR/<table>/run_id=<id>/part-0.parquet one zstd file per table and run, `run_id` the first column
The export is written to a staging folder beside DATASET_DIR and renamed into place: a crash leaves no half dataset.
`check_dataset(DIR)` recomputes the card's numbers from the files and raises DatasetMismatch naming the first
difference.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from .folder import DESCRIPTOR, FORMAT, manifest_path, partition_dir, write_json_atomic
from .reader import open_trace
from .schema import RUN_ID, SCHEMA_VERSION, TABLES

CARD = "README.md"


class ExportError(ValueError):
    """The export cannot run (target not empty, unknown table or run); nothing was written."""


class DatasetMismatch(ValueError):
    """A dataset folder whose files do not match its card."""


@dataclass
class ExportSummary:
    path: Path
    runs: list[str]
    tables: dict[str, dict]  # table -> {rows, files, bytes}


def _table_stats(root: Path, table: str) -> dict:
    files = sorted((root / table).glob("*/*.parquet"))
    return {"rows": sum(pq.ParquetFile(f).metadata.num_rows for f in files), "files": len(files),
            "bytes": sum(f.stat().st_size for f in files)}


EXPORTED_FILE = "part-0.parquet"


def exported_manifest(manifest: dict, tables: list[str]) -> dict:
    """A run's manifest as the dataset holds it: its committed parts are now one file per table, so `parts` lists
    that file (readers, the dashboard among them, show only the files a manifest lists) and `tables` what was
    exported."""
    if "parts" not in manifest:  # a run written in one commit before parts existed: readers take every file
        return manifest
    return {**manifest, "parts": {table: [EXPORTED_FILE] for table in tables}, "tables": sorted(tables)}


def export_dataset(trace_dir: str | Path, dataset_dir: str | Path, tables: list[str] | None = None,
                   runs: list[str] | None = None, title: str | None = None, notes: str = "") -> ExportSummary:
    """Copy `runs` (default: every committed run) and `tables` (default: every table those runs hold) of a trace
    folder into a new dataset folder with a card. `notes`: Markdown added to the card under the title."""
    trace = open_trace(trace_dir)
    target = Path(dataset_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} is not empty: export into a new or empty folder (nothing was written)")
    known = trace.run_ids()
    runs = list(runs or known)
    unknown = [r for r in runs if r not in known]
    if unknown:
        raise ExportError(f"run(s) {', '.join(unknown)} are not committed in {trace_dir}; runs: {', '.join(known)}")
    if tables is not None:
        bad = [t for t in tables if t not in TABLES]
        if bad:
            raise ExportError(f"unknown table(s) {', '.join(bad)}; tables: {', '.join(TABLES)}")
    chosen = [t for t in (tables or TABLES) if any(trace.has_rows(t, r) for r in runs)]
    if not chosen:
        raise ExportError(f"the chosen runs hold none of the chosen tables in {trace_dir}")
    staging = target.parent / f".{target.name}.export-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        write_json_atomic(staging / DESCRIPTOR, {"format": FORMAT, "schema_version": SCHEMA_VERSION})
        manifest_path(staging, runs[0]).parent.mkdir()
        manifests = {m["run_id"]: m for m in trace.manifests() if m["run_id"] in runs}
        for run_id in runs:
            written = []
            for table in chosen:
                if not trace.has_rows(table, run_id):
                    continue
                data = trace.read(table, run_id=run_id)
                folder = partition_dir(staging, table, run_id)
                folder.mkdir(parents=True)
                pq.write_table(data, folder / EXPORTED_FILE, compression="zstd")
                written.append(table)
            write_json_atomic(manifest_path(staging, run_id), exported_manifest(manifests[run_id], written))
        stats = {table: _table_stats(staging, table) for table in chosen}
        (staging / CARD).write_text(dataset_card(title or target.name, stats, [manifests[r] for r in runs], notes))
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportSummary(target, runs, stats)


def _run_section(manifest: dict) -> list[str]:
    model = manifest.get("model", {})
    probe = manifest.get("probe")
    prompts = manifest.get("prompts", [])
    labels = sorted({p.get("label") for p in prompts if p.get("label")})
    packages = ", ".join(f"{k} {v}" for k, v in (manifest.get("packages") or {}).items() if v)
    capture = {k: v for k, v in (manifest.get("capture") or {}).items()}
    return [
        f"### run `{manifest['run_id']}`" + (f" — probe `{probe['name']}`" if probe else ""),
        "",
        f"- model: `{model.get('source')}` ({model.get('architecture')}), config hash `{model.get('config_hash')}`, "
        f"dtype {model.get('dtype')}, device {model.get('device')}",
        f"- prompts: {len(prompts)} ({manifest.get('num_tokens', 0)} tokens)"
        + (f", labels: {', '.join(labels)}" if labels else ""),
        f"- capture settings: `{json.dumps(capture, sort_keys=True)}`",
        *([f"- probe: `{json.dumps(probe, sort_keys=True)}`"] if probe else []),
        f"- packages: {packages}",
        f"- started {manifest.get('started')}, finished {manifest.get('finished')}",
        "",
    ]


def dataset_card(title: str, stats: dict[str, dict], manifests: list[dict], notes: str = "") -> str:
    """The card: YAML front matter (HF configs per table, the workbench block of computed numbers), then Markdown."""
    front = {
        "configs": [{"config_name": table, "data_files": [{"split": "train", "path": f"{table}/*/*.parquet"}]}
                    for table in stats],
        "tags": ["workbench", "mixture-of-experts", "interpretability", "traces"],
        "workbench": {"schema_version": SCHEMA_VERSION, "runs": [m["run_id"] for m in manifests],
                      "tables": {t: dict(s) for t, s in stats.items()}},
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# {title}", ""]
    if notes:
        lines += [notes.strip(), ""]
    lines += [
        "Exported by `workbench export` from a workbench trace folder (this folder is one too: `workbench app` opens "
        "it). Every Parquet file holds one run of one table, `run_id` its first column. Load a table with",
        "",
        "```python",
        f"datasets.load_dataset(\"{title}\", \"{next(iter(stats))}\")      # or the folder's path",
        f"duckdb.sql(\"select * from read_parquet('{next(iter(stats))}/*/*.parquet')\")",
        f"polars.read_parquet(\"{next(iter(stats))}/*/*.parquet\"); pyarrow.dataset.dataset(\"{next(iter(stats))}\")",
        "```",
        "",
        "## Tables",
        "",
        "| table | rows | files | bytes |",
        "|---|---|---|---|",
        *[f"| `{t}` | {s['rows']} | {s['files']} | {s['bytes']} |" for t, s in stats.items()],
        "",
    ]
    for table in stats:
        lines += [f"**`{table}`**", "", "| column | type | meaning |", "|---|---|---|",
                  f"| `run_id` | {RUN_ID.type} | {RUN_ID.doc} |"]
        lines += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in TABLES[table]]
        lines.append("")
    lines += ["## How it was made", ""]
    for manifest in manifests:
        lines += _run_section(manifest)
    return "\n".join(lines)


def read_card(dataset_dir: str | Path) -> dict:
    """The card's YAML front matter."""
    path = Path(dataset_dir) / CARD
    if not path.is_file():
        raise DatasetMismatch(f"{dataset_dir} has no dataset card {CARD}")
    text = path.read_text()
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise DatasetMismatch(f"{path} has no YAML front matter")
    return yaml.safe_load(text[4:text.index("\n---\n", 4)])


def check_dataset(dataset_dir: str | Path) -> dict:
    """Recompute every table's rows, files and bytes and compare them with the card; check the configs name each
    table and the manifests match the card's runs. Returns the card's front matter; raises DatasetMismatch."""
    root = Path(dataset_dir)
    card = read_card(root)
    block = card.get("workbench") or {}
    tables = block.get("tables") or {}
    configs = {c["config_name"]: c for c in card.get("configs", [])}
    on_disk = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in TABLES)
    if sorted(tables) != on_disk:
        raise DatasetMismatch(f"{root}: the card lists tables {sorted(tables)} but the folder holds {on_disk}")
    for table, expected in tables.items():
        if table not in configs:
            raise DatasetMismatch(f"{root}: table {table} has no config in the card")
        actual = _table_stats(root, table)
        if actual != expected:
            raise DatasetMismatch(f"{root}: table {table} holds {actual} but the card says {expected}")
    runs = sorted(p.stem for p in (root / "runs").glob("*.json"))
    if runs != sorted(block.get("runs", [])):
        raise DatasetMismatch(f"{root}: runs/ holds {runs} but the card says {sorted(block.get('runs', []))}")
    for run_id in runs:  # every file a manifest lists exists, or the dashboard would show the run without it
        manifest = json.loads((root / "runs" / f"{run_id}.json").read_text())
        for table, names in manifest.get("parts", {}).items():
            missing = [n for n in names if not (partition_dir(root, table, run_id) / n).is_file()]
            if missing:
                raise DatasetMismatch(f"{root}: run {run_id}'s manifest lists {table} files {missing} that are not "
                                      "in the folder")
    return card


def copy_runs(source: str | Path, target: str | Path, runs: list[str] | None = None) -> list[str]:
    """Copy committed runs (default: all) of one trace folder into another (created if needed): each run's partition
    folders, then its manifest last (the commit marker), so a crash leaves the target's committed runs as they were.
    A run id the target already holds is refused. Returns the copied run ids."""
    from .folder import prepare_for_append

    trace = open_trace(source)
    target = Path(target)
    prepare_for_append(target)
    runs = list(runs or trace.run_ids())
    for run_id in runs:
        if manifest_path(target, run_id).exists():
            raise ExportError(f"run {run_id} is already in {target}")
        for table in TABLES:
            if trace.has_rows(table, run_id):
                shutil.copytree(partition_dir(trace.root, table, run_id), partition_dir(target, table, run_id))
        shutil.copyfile(manifest_path(trace.root, run_id), manifest_path(target, run_id))
    return runs
