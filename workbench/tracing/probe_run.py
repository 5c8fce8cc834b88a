"""`write_probe_run`: append one probe's tables to a trace folder as one complete run, with the run manifest.

Every probe (state capacity, needle sweep, layer ablation, expert pruning, routing specialisation, retrieval heads)
ends the same way: open a writer, add its tables, commit them with `run_manifest` plus a `probe` record saying
what it ran. This is that one place, so a probe's run carries the same manifest facts as a traced run.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import pyarrow as pa

from ..capture import CaptureSettings
from ..loading import LoadedModel
from ..trace import TraceWriter
from .manifest import run_manifest


JSON_DIGITS = 6  # significant digits of a measured value in JSON: float32 holds about 7


def rounded(value, digits: int = JSON_DIGITS):
    """`value` (a float, or dicts, lists and tuples of them, nested) ready for JSON: a float that is exactly a float32
    (a measured value read back from a float32 column) becomes the shortest decimal that float32 reads back
    (0.20000000298023224 -> 0.2); every float is then rounded to `digits` significant digits (pass 15 to keep any
    float64 parameter as given). NaN and infinities stay; numpy scalars become Python numbers; other values are
    unchanged."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return value
        if value == float(np.float32(value)):
            value = float(str(np.float32(value)))
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


class ProbeRun(NamedTuple):
    run_id: str
    manifest_path: Path


def write_probe_run(loaded: LoadedModel, out: str | Path, tables: Iterable[tuple[str, pa.Table]],
                    settings: CaptureSettings, prompt_records: list[dict], started: datetime,
                    probe: dict) -> ProbeRun:
    """Add `tables` ((table name, rows) pairs, in order: a name given twice appends) to a new run of `out` and
    commit it as one part with the run manifest (`settings`: the capture the probe observed with;
    `prompt_records`: the manifest's prompt list; `started`: when the probe began; `probe`: the manifest's `probe`
    record, its name and parameters; floats that came from float32 are written as float32 reads them, 0.2 not
    0.20000000298023224). Nothing is left in `out` if writing fails."""
    with TraceWriter(out) as writer:
        for name, table in tables:
            writer.add(name, table)
        named = {"name": probe["name"]} if probe.get("name") else {}  # a probe's runs are named after it
        path = writer.commit(run_manifest(loaded, settings, rounded(prompt_records, 15), started,
                                          probe=rounded(probe, 15), **named))  # no float32 noise; float64 kept
    return ProbeRun(writer.run_id, path)
