"""Text summary of a trace folder for `workbench info`."""

from __future__ import annotations

from ..trace import Trace


def _size(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.1f} {unit}" if unit != "B" else f"{int(num_bytes)} B"
        num_bytes /= 1024
    return ""


def trace_summary(trace: Trace) -> str:
    manifests = trace.manifests()
    lines = [f"trace {trace.root}  (schema {trace.descriptor['schema_version']}, {len(manifests)} runs)"]
    for m in manifests:
        model = m["model"]
        lines.append(
            f"- run {m['run_id']}: model {model['source']} ({model['architecture']}, config {model['config_hash']}), "
            f"{len(m['prompts'])} sequences, {m['num_tokens']} tokens, {len(m['layer_kinds'])} layers "
            f"({len(m['moe_layers'])} MoE; {m['layer_kinds'].count('linear_attention')} DeltaNet, {m['layer_kinds'].count('full_attention')} attention), "
            f"capture {m['capture']}"
        )
    total_tokens = sum(m["num_tokens"] for m in manifests)
    for table in trace.tables():
        size = trace.size_bytes(table)
        rows = trace.dataset(table).count_rows()
        per_token = f", {size / total_tokens:.1f} B/token" if total_tokens else ""
        lines.append(f"  {table}: {rows} rows, {_size(size)}{per_token}")
    return "\n".join(lines)
