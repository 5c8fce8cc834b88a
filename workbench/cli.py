"""`workbench` command line: trace, info, schema, export, check-dataset, app. Thin wiring over the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Look inside hybrid linear-attention MoE models.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def trace(
    out: Path = typer.Option(..., "--out", help="Trace folder (created, or appended to)."),
    model: str = typer.Option("nano", "--model", help="'nano', a local checkpoint folder, or an HF id."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="JSONL file: {id, text, label?} per line."),
    text: Optional[str] = typer.Option(None, "--text", help="Trace this one text instead of a prompts file."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ..."),
    device_map: Optional[str] = typer.Option(None, "--device-map", help="e.g. 'auto' to spread over GPUs."),
    router_logits: bool = typer.Option(False, "--router-logits", help="Also store full router logits."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1,
                                             help="Truncate each prompt to this many tokens."),
    attention: bool = typer.Option(False, "--attention", help="Attention recall of full-attention layers: span "
                                   "masses, top-k keys, entropy, sink, distance per analysed query and head; gates."),
    attention_stride: int = typer.Option(64, "--attention-stride", min=0, help="Analyse every N-th token (0: only the "
                                         "last token and query spans)."),
    attention_topk: int = typer.Option(8, "--attention-topk", min=1, help="Most-attended keys kept per query and head."),
    deltanet: bool = typer.Option(False, "--deltanet", help="DeltaNet state: per-token state norm, decay, beta, "
                                  "half-life per layer; per-head summaries; recall of spans named needle*."),
    deltanet_heads: str = typer.Option("aggregate", "--deltanet-heads", help="aggregate or per_head (per-head rows at "
                                       "every token; else every --deltanet-head-stride)."),
    deltanet_head_stride: int = typer.Option(0, "--deltanet-head-stride", min=0, help="Per-head rows every N tokens "
                                             "(0: none)."),
    state_snapshot: Optional[List[int]] = typer.Option(None, "--state-snapshot", help="Token position (negative: from "
                                                       "the end) whose state spectrum to keep; repeatable."),
    deltanet_path: str = typer.Option("auto", "--deltanet-path", help="auto (fla on CUDA when available, else the "
                                      "PyTorch chunk loop), fla or torch."),
    expert_saliency: bool = typer.Option(False, "--expert-saliency", help="Per MoE layer and expert: selections, mean "
                                         "gate, mean ||expert output||, REAP; the shared expert's share (tables "
                                         "expert_saliency, shared_expert_share)."),
    expert_saliency_path: str = typer.Option("grouped", "--expert-saliency-path", help="grouped (the experts' own "
                                             "implementation, batched) or loop (per-expert eager loop)."),
    revision: Optional[str] = typer.Option(None, help="HF revision (branch, tag or commit)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with the model."),
    allow_download: bool = typer.Option(False, "--allow-download", help="Let an HF id be fetched from the hub."),
):
    """Trace prompts through a model and append one run to OUT."""
    from .adapters import UnsupportedArchitecture
    from .capture import CaptureError, CaptureSettings
    from .loading import ModelNotAvailable, check_load_options, load_model
    from .prompts import PromptFileError, prompt_from_text, read_prompts
    from .spans import SpanError
    from .trace import TraceFolderError
    from .trace.folder import prepare_for_append
    from .tracing import trace_prompts

    if (prompts is None) == (text is None):
        _fail("give exactly one of --prompts FILE.jsonl or --text '...'")
    try:  # every check that needs no model, each in the one place that owns it, before anything loads
        settings = CaptureSettings(router_logits=router_logits, attention=attention,
                                   attention_stride=attention_stride, attention_topk=attention_topk,
                                   deltanet=deltanet, deltanet_heads=deltanet_heads,
                                   deltanet_head_stride=deltanet_head_stride,
                                   state_snapshots=tuple(state_snapshot or ()),
                                   deltanet_path=deltanet_path, expert_saliency=expert_saliency,
                                   expert_saliency_path=expert_saliency_path)
        settings.check_environment(device)
        check_load_options(dtype, device, device_map)
    except ValueError as error:
        _fail(str(error))
    try:
        prompt_list = read_prompts(prompts) if prompts is not None else [prompt_from_text(text)]
        prepare_for_append(out)  # check the folder before spending time on the model
        loaded = load_model(model, dtype=dtype, device=device, device_map=device_map,
                            trust_remote_code=trust_remote_code, revision=revision, allow_download=allow_download)
        summary = trace_prompts(loaded, prompt_list, out, settings, max_tokens=max_tokens)
    except (PromptFileError, TraceFolderError, ModelNotAvailable, UnsupportedArchitecture, SpanError,
            CaptureError) as error:
        _fail(str(error))
    typer.echo(f"run {summary.run_id}: {summary.num_sequences} sequences, {summary.num_tokens} tokens -> {out}")


@app.command()
def info(folder: Path = typer.Argument(..., help="Trace folder.")):
    """Print a trace folder's runs, tokens, layers and sizes."""
    from .analysis.summary import trace_summary
    from .trace import TraceFolderError, open_trace

    try:
        trace_handle = open_trace(folder)
    except (TraceFolderError, FileNotFoundError) as error:
        _fail(str(error))
    typer.echo(trace_summary(trace_handle))


@app.command()
def schema():
    """Print every trace table's columns (meaning, dtype, units)."""
    from .trace import schema_markdown

    typer.echo(schema_markdown())


@app.command()
def export(
    trace_dir: Path = typer.Argument(..., help="Trace folder to export from."),
    dataset_dir: Path = typer.Argument(..., help="New (or empty) dataset folder."),
    tables: Optional[List[str]] = typer.Option(None, "--tables", help="Tables to export (repeatable; default all)."),
    runs: Optional[List[str]] = typer.Option(None, "--runs", help="Run ids to export (repeatable; default all)."),
    title: Optional[str] = typer.Option(None, "--title", help="Card title (default: the folder's name)."),
):
    """Write runs of a trace folder as a dataset: Parquet per table and run, a card README.md with HF configs."""
    from .trace import TraceFolderError
    from .trace.export import ExportError, export_dataset

    try:
        summary = export_dataset(trace_dir, dataset_dir, tables=tables, runs=runs, title=title)
    except (ExportError, TraceFolderError, FileNotFoundError) as error:
        _fail(str(error))
    sizes = ", ".join(f"{t} {s['rows']} rows" for t, s in summary.tables.items())
    typer.echo(f"{len(summary.runs)} runs -> {summary.path}: {sizes}")


@app.command(name="check-dataset")
def check_dataset_command(dataset_dir: Path = typer.Argument(..., help="Dataset folder written by export.")):
    """Check an exported dataset's files against its card (rows, files, bytes per table; runs)."""
    from .trace.export import DatasetMismatch, check_dataset

    try:
        card = check_dataset(dataset_dir)
    except DatasetMismatch as error:
        _fail(str(error))
    typer.echo(f"{dataset_dir}: {len(card['workbench']['tables'])} tables match the card")


def dashboard_script() -> Path:
    """The Streamlit entry script, shipped inside the package (works from a wheel install)."""
    return Path(__file__).resolve().parent / "app" / "streamlit_app.py"


@app.command(name="app")
def app_command(
    folder: Path = typer.Argument(..., help="Trace folder to show."),
    port: int = typer.Option(8501, help="Port on 127.0.0.1."),
):
    """Start the dashboard on http://127.0.0.1:PORT for a trace folder."""
    from .trace import TraceFolderError, open_trace

    try:
        open_trace(folder)
    except (TraceFolderError, FileNotFoundError) as error:
        _fail(str(error))
    command = [
        sys.executable, "-m", "streamlit", "run", str(dashboard_script()),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--", "--trace", str(folder.resolve()),
    ]
    typer.echo(f"dashboard for {folder} on http://127.0.0.1:{port}  (Ctrl+C stops it)")
    sys.stdout.flush()
    os.execv(sys.executable, command)  # streamlit replaces this process: stopping it leaves no orphan server


if __name__ == "__main__":
    app()
