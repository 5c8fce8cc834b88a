"""`write_probe_run`: append one probe's tables to a trace folder as one complete run, with the run manifest.

Every probe (state capacity, needle sweep, layer ablation, expert pruning, routing specialisation, retrieval heads)
ends the same way: open a writer, add its tables, commit them with `run_manifest` plus a `probe` record saying
what it ran. This is that one place, so a probe's run carries the same manifest facts as a traced run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Iterable, NamedTuple

import pyarrow as pa

from ..capture import CaptureSettings
from ..loading import LoadedModel
from ..trace import TraceWriter
from .manifest import run_manifest


class ProbeRun(NamedTuple):
    run_id: str
    manifest_path: Path


def write_probe_run(loaded: LoadedModel, out: str | Path, tables: Iterable[tuple[str, pa.Table]],
                    settings: CaptureSettings, prompt_records: list[dict], started: datetime,
                    probe: dict) -> ProbeRun:
    """Add `tables` ((table name, rows) pairs, in order: a name given twice appends) to a new run of `out` and
    commit it as one part with the run manifest (`settings`: the capture the probe observed with;
    `prompt_records`: the manifest's prompt list; `started`: when the probe began; `probe`: the manifest's `probe`
    record, its name and parameters). Nothing is left in `out` if writing fails."""
    with TraceWriter(out) as writer:
        for name, table in tables:
            writer.add(name, table)
        named = {"name": probe["name"]} if probe.get("name") else {}  # a probe's runs are named after it
        path = writer.commit(run_manifest(loaded, settings, prompt_records, started, probe=probe, **named))
    return ProbeRun(writer.run_id, path)
