"""Text summary of a trace folder for `workbench info`: per run, its model, tokens, layers and table sizes."""

from __future__ import annotations

import textwrap

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


WIDTH = 100  # `workbench info` wraps its lines here


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 run', '2 runs', '4,781 tokens': the count with thousands separators and the noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _field(label: str, text: str) -> list[str]:
    """One labelled field of a run, wrapped at WIDTH with its continuation lines indented under the text."""
    return textwrap.wrap(text, WIDTH, initial_indent=f"  {label:<9} ", subsequent_indent=" " * 12,
                         break_on_hyphens=False) or [f"  {label}"]


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def capture_text(capture: dict) -> str:
    """A run's capture settings as 'routing, attention (stride 64, topk 8), ...': the kinds that were on, each with
    its own options (keys named <kind>_<option>); options of kinds that were off are left out."""
    kinds = [key for key, on in capture.items() if on is True]
    parts = []
    for kind in kinds:
        options = [f"{key[len(kind) + 1:]} {_value(value)}" for key, value in capture.items()
                   if key.startswith(f"{kind}_") and not isinstance(value, bool) and value not in (None, [], "")]
        parts.append(f"{kind} ({', '.join(options)})" if options else kind)
    return ", ".join(parts) or "nothing"


def _kind(manifest: dict) -> str:
    probe = manifest.get("probe") or {}
    if not probe:
        return "trace"
    name = probe.get("name", "probe")
    return f"probe {name}" + (" (an intervention)" if probe.get("intervention") else "")


def _dtype_text(manifest: dict) -> str:
    """'float32 on cpu' from the manifest's model record; 'not recorded' for runs written without it."""
    model = manifest["model"]
    dtype = model.get("dtype") or "not recorded"
    return f"{dtype} on {model['device']}" if model.get("device") else dtype


def _layers_text(manifest: dict) -> str:
    kinds = manifest.get("layer_kinds", [])
    text = f"{counted(len(kinds), 'layer')} ({_kind_counts(kinds)}; {len(manifest.get('moe_layers', []))} MoE)"
    return text + (" + the MTP layer" if manifest.get("capture", {}).get("mtp") else "")


def trace_summary(trace: Trace) -> str:
    """`workbench info`: per run its kind, model with dtype and device, prompts, layers, capture (or the probe's
    parameters) and, per table, rows, bytes on disk and bytes per token of that run; lines wrapped at WIDTH."""
    manifests = trace.manifests()
    lines = [f"trace {trace.root}  (schema {trace.schema_version}, {counted(len(manifests), 'run')})"]
    if trace.note:
        lines += textwrap.wrap(f"note: {trace.note}", WIDTH)
    sizes = run_sizes(trace)
    for m in manifests:
        lines += ["", f"run {m['run_id']}  {_kind(m)}"]
        model = m["model"]
        lines += _field("model", f"{model['source']} ({model['architecture']}, config {model['config_hash']})")
        lines += _field("dtype", _dtype_text(m))
        lines += _field("prompts", f"{counted(len(m['prompts']), 'sequence')}, {counted(m['num_tokens'], 'token')}")
        lines += _field("layers", _layers_text(m))
        probe = {k: v for k, v in (m.get("probe") or {}).items() if k != "name"}
        if probe:
            lines += _field("probe", ", ".join(f"{k} {_value(v)}" for k, v in probe.items()))
        else:
            lines += _field("capture", capture_text(m.get("capture", {})))
        run = sizes[sizes.run_id == m["run_id"]]
        if len(run):
            name = max(len(t) for t in run.table) + 1
            lines.append(f"  {'tables':<{name + 1}} {'rows':>10} {'on disk':>10} {'B/token':>9}")
            for row in run.itertuples():
                per_token = f"{row.bytes_per_token:9.1f}" if row.tokens else f"{'-':>9}"
                lines.append(f"    {row.table + ':':<{name}} {row.rows:>10,} {_size(row.bytes):>10} {per_token}")
            per_token = f"{run.bytes.sum() / m['num_tokens']:9.1f}" if m["num_tokens"] else f"{'-':>9}"
            lines.append(f"    {'total':<{name}} {'':>10} {_size(run.bytes.sum()):>10} {per_token}")
    return "\n".join(lines)
