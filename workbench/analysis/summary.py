"""Text summary of a trace folder for `workbench info`: per run, its model, tokens, layers and table sizes."""

from __future__ import annotations

import pandas as pd

from ..trace import Trace


def _size(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.1f} {unit}" if unit != "B" else f"{int(num_bytes)} B"
        num_bytes /= 1024
    return ""


def run_sizes(trace: Trace) -> pd.DataFrame:
    """One row per (run, table the run holds): run_id, table, rows, bytes (on disk), tokens (of the run),
    bytes_per_token (of that run only)."""
    rows = []
    tokens = {m["run_id"]: m["num_tokens"] for m in trace.manifests()}
    for run_id, tables in trace.run_sizes().items():
        for table, size in tables.items():
            count = trace.dataset(table).count_rows(filter=_run(run_id))
            rows.append({"run_id": run_id, "table": table, "rows": count, "bytes": size, "tokens": tokens[run_id],
                         "bytes_per_token": size / tokens[run_id] if tokens[run_id] else float("nan")})
    return pd.DataFrame(rows, columns=["run_id", "table", "rows", "bytes", "tokens", "bytes_per_token"])


def _run(run_id: str):
    import pyarrow.dataset as ds

    return ds.field("run_id") == run_id


KIND_NAMES = {"linear_attention": "DeltaNet", "full_attention": "attention"}


def _kind_counts(kinds: list[str]) -> str:
    """'36 DeltaNet, 12 attention' (the kinds a model has, in order of first appearance; a plain MoE model's
    line names attention only)."""
    counts = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    return ", ".join(f"{n} {KIND_NAMES.get(kind, kind)}" for kind, n in counts.items()) or "no layer kinds recorded"


def trace_summary(trace: Trace) -> str:
    manifests = trace.manifests()
    lines = [f"trace {trace.root}  (schema {trace.schema_version}, {len(manifests)} runs)"]
    if trace.note:
        lines.append(f"note: {trace.note}")
    sizes = run_sizes(trace)
    for m in manifests:
        model = m["model"]
        kinds = m.get("layer_kinds", [])
        lines.append(
            f"- run {m['run_id']}: model {model['source']} ({model['architecture']}, config {model['config_hash']}), "
            f"{len(m['prompts'])} sequences, {m['num_tokens']} tokens, {len(kinds)} layers "
            f"({len(m.get('moe_layers', []))} MoE; {_kind_counts(kinds)}), capture {m.get('capture', {})}"
        )
        run = sizes[sizes.run_id == m["run_id"]]
        for row in run.itertuples():
            per_token = f", {row.bytes_per_token:.1f} B/token" if row.tokens else ""
            lines.append(f"    {row.table}: {row.rows} rows, {_size(row.bytes)}{per_token}")
        if len(run):
            per_token = f", {run.bytes.sum() / m['num_tokens']:.1f} B/token" if m["num_tokens"] else ""
            lines.append(f"    total: {_size(run.bytes.sum())}{per_token}")
    return "\n".join(lines)
