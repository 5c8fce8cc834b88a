"""`workbench` command line: trace, generate, info, schema, export, check-dataset, app, doctor. Thin wiring over the
library."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

COMMANDS: list[tuple[str, object]] = []  # (name, function) of every command, in --help order


def command(name: str | None = None):
    """Register a function as a `workbench` command (build_app makes the typer app from these)."""
    def register(function):
        COMMANDS.append((name or function.__name__, function))
        return function

    return register


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@command()
def trace(
    out: Path = typer.Option(..., "--out", help="Trace folder (created, or appended to)."),
    model: str = typer.Option("nano", "--model", help="'nano', a local checkpoint folder, or an HF id."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="JSONL file: {id, text, label?} per line."),
    text: Optional[str] = typer.Option(None, "--text", help="Trace this one text instead of a prompts file."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ..."),
    device_map: Optional[str] = typer.Option(None, "--device-map", help="e.g. 'auto' to spread over GPUs."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1,
                                             help="Truncate each prompt to this many tokens."),
    revision: Optional[str] = typer.Option(None, help="HF revision (branch, tag or commit)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with the model."),
    allow_download: bool = typer.Option(False, "--allow-download", help="Let an HF id be fetched from the hub."),
    batch_tokens: Optional[int] = typer.Option(None, "--batch-tokens", min=1, help="Run prompts in right-padded "
                                               "batches of up to N tokens (rows x longest prompt); default batch 1."),
    part_tokens: int = typer.Option(131072, "--part-tokens", min=1, help="Commit a part every N traced tokens (a run "
                                    "that dies keeps its committed parts)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue run RUN_ID of OUT that stopped, skipping its "
                                         "committed prompts (same model, prompts and capture options)."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data actor pool)."),
    num_gpus: int = typer.Option(0, "--num-gpus", min=0, help="--engine ray: one model replica per GPU (0: CPU "
                                 "workers)."),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", min=1, help="--engine ray: replicas (default: "
                                              "--num-gpus, or 2 CPU workers)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="--engine ray: an existing cluster's address "
                                              "(default: a local ray.init())."),
    gpus_per_replica: int = typer.Option(1, "--gpus-per-replica", min=1, help="--engine ray: GPUs each model replica "
                                         "spans (device_map auto over them), for a model larger than one GPU."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the run (pick it later by name: "
                                       "trace.run(NAME), `workbench runs`)."),
    note: Optional[str] = typer.Option(None, "--note", help="A note kept in the run's manifest."),
    **capture,
):
    """Trace prompts through a model and append one run to OUT. Its capture flags (routing on by default, --attention,
    --deltanet, ... and their options) are those of the registered capture kinds (cli_capture.py)."""
    from .capture import CaptureSettings
    from .loading import check_load_options, load_model
    from .tracing import trace_prompts
    from .tracing.manifest import named

    if (prompts is None) == (text is None):
        _fail("give exactly one of --prompts FILE.jsonl or --text '...'")
    try:  # every check that needs no model, each in the one place that owns it, before anything loads
        settings = CaptureSettings(**capture)
        settings.check_environment(device)
        check_load_options(dtype, device, device_map)
        named(name, note)
        if engine not in ("local", "ray"):
            raise ValueError(f"--engine must be 'local' or 'ray', got {engine!r}")
        if engine == "local" and (num_gpus or num_workers or ray_address or gpus_per_replica != 1):
            raise ValueError("--num-gpus, --num-workers, --gpus-per-replica and --ray-address need --engine ray")
    except ValueError as error:
        _fail(str(error))
    load_options = dict(dtype=dtype, device=device, device_map=device_map, trust_remote_code=trust_remote_code,
                        revision=revision, allow_download=allow_download)

    def run(prompt_list):
        if engine == "ray":
            from .engine.ray_engine import trace_with_ray

            return trace_with_ray(model, load_options, prompt_list, out, settings, max_tokens=max_tokens,
                                  batch_tokens=batch_tokens, part_tokens=part_tokens, resume=resume,
                                  num_gpus=num_gpus, num_workers=num_workers, address=ray_address,
                                  gpus_per_replica=gpus_per_replica, name=name, note=note)
        return trace_prompts(load_model(model, **load_options), prompt_list, out, settings, max_tokens=max_tokens,
                             batch_tokens=batch_tokens, part_tokens=part_tokens, resume=resume, name=name, note=note)

    _write_run(out, prompts, text, resume, run, "tokens")


@command()
def generate(
    out: Path = typer.Option(..., "--out", help="Trace folder (created, or appended to)."),
    model: str = typer.Option("nano", "--model", help="'nano', a local checkpoint folder, or an HF id."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="JSONL file: {id, text, label?} per line."),
    text: Optional[str] = typer.Option(None, "--text", help="Generate after this one text instead of a prompts file."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Tokens generated per prompt at most."),
    temperature: float = typer.Option(0.0, "--temperature", help="0: greedy; > 0: sample from softmax(logits / T)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (needs --temperature > 0)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling (each prompt starts from it)."),
    stop: Optional[List[str]] = typer.Option(None, "--stop", help="Stop once the generated text contains this string "
                                             "(repeatable); the end-of-sequence token always stops."),
    speculative: Optional[str] = typer.Option(None, "--speculative", help="'mtp': the checkpoint's MTP head drafts "
                                              "--draft-tokens tokens, the trunk verifies them in one forward (table "
                                              "drafts)."),
    draft_tokens: int = typer.Option(2, "--draft-tokens", help="--speculative mtp: tokens drafted per round."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ..."),
    device_map: Optional[str] = typer.Option(None, "--device-map", help="e.g. 'auto' to spread over GPUs."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Truncate each prompt to this many "
                                             "tokens."),
    revision: Optional[str] = typer.Option(None, help="HF revision (branch, tag or commit)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with the model."),
    allow_download: bool = typer.Option(False, "--allow-download", help="Let an HF id be fetched from the hub."),
    part_tokens: int = typer.Option(131072, "--part-tokens", min=1, help="Commit a part every N tokens (prompt + "
                                    "generated)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue run RUN_ID of OUT that stopped (same model, "
                                         "prompts, capture and generation options)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the run (pick it later by name: "
                                       "trace.run(NAME), `workbench runs`)."),
    note: Optional[str] = typer.Option(None, "--note", help="A note kept in the run's manifest."),
    **capture,
):
    """Generate after each prompt and append one run to OUT: every per-token table holds the prompt's rows and each
    generated token's (column phase: prefill | decode); the tokens table holds the generated tokens and their
    log-probabilities. Capture flags as for `trace`."""
    from .capture import CaptureSettings
    from .generation import GenerationSettings, generate_prompts
    from .generation.run import check_generation_capture
    from .loading import check_load_options, load_model
    from .tracing.manifest import named

    if (prompts is None) == (text is None):
        _fail("give exactly one of --prompts FILE.jsonl or --text '...'")
    try:
        settings = CaptureSettings(**capture)
        settings.check_environment(device)
        check_generation_capture(settings)
        named(name, note)
        generation = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                        seed=seed, stop=tuple(stop or ()), speculative=speculative,
                                        draft_tokens=draft_tokens)
        check_load_options(dtype, device, device_map)
    except ValueError as error:
        _fail(str(error))

    def run(prompt_list):
        loaded = load_model(model, dtype=dtype, device=device, device_map=device_map,
                            trust_remote_code=trust_remote_code, revision=revision, allow_download=allow_download)
        return generate_prompts(loaded, prompt_list, out, settings, generation, max_tokens=max_tokens,
                                part_tokens=part_tokens, resume=resume, name=name, note=note)

    _write_run(out, prompts, text, resume, run, "tokens (prompt + generated)")


def _write_run(out: Path, prompts: Optional[Path], text: Optional[str], resume: Optional[str], run, what: str) -> None:
    """What `trace` and `generate` share once their options are checked: read the prompts, check the folder (and the
    run to resume) before any model loads, `run(prompts)` -> RunSummary, then one line of summary; every known
    error is one line (exit 2), Ctrl-C says what was kept and how to resume (exit 130)."""
    from .adapters import UnsupportedArchitecture
    from .capture import CaptureError
    from .inputs.prompts import PromptFileError, prompt_from_text, read_prompts
    from .inputs.spans import SpanError
    from .loading import ModelNotAvailable
    from .trace import TraceFolderError
    from .trace.folder import check_for_append
    from .tracing import TraceInterrupted

    try:
        prompt_list = read_prompts(prompts) if prompts is not None else [prompt_from_text(text)]
        check_for_append(out)  # check the folder (creating nothing) before spending time on the model
        if resume is not None:
            from .trace.writer import read_manifest
            from .tracing import check_resume

            check_resume(out, resume, read_manifest(out, resume) if out.is_dir() else None)
        summary = run(prompt_list)
    except TraceInterrupted as stopped:
        typer.secho(str(stopped), fg=typer.colors.YELLOW, err=True)
        if stopped.summary is not None:
            typer.secho(f"committed parts are readable in {out}; resume with: {_resume_command(stopped.summary.run_id)}",
                        err=True)
        raise typer.Exit(code=130)
    except (PromptFileError, TraceFolderError, ModelNotAvailable, UnsupportedArchitecture, SpanError,
            CaptureError, ValueError) as error:
        _fail(str(error))
    from .analysis.summary import counted

    skipped = f" ({len(summary.skipped)} committed earlier, skipped)" if summary.skipped else ""
    typer.echo(f"run {summary.run_id}: {counted(summary.num_sequences, 'sequence')}, {summary.num_tokens} {what} -> "
               f"{out}{skipped}")


def _resume_command(run_id: str) -> str:
    """This command line with `--resume RUN_ID` (replacing one given)."""
    import shlex

    args, kept, skip = sys.argv[1:], [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--resume":
            skip = True
            continue
        if not arg.startswith("--resume="):
            kept.append(arg)
    return " ".join(["workbench", *map(shlex.quote, kept), "--resume", run_id])


@command()
def info(folder: Path = typer.Argument(..., help="Trace folder.")):
    """Print a trace folder's runs, tokens, layers and sizes."""
    from .analysis.summary import trace_summary
    from .trace import TraceFolderError, open_trace

    try:
        trace_handle = open_trace(folder)
    except (TraceFolderError, FileNotFoundError) as error:
        _fail(str(error))
    typer.echo(trace_summary(trace_handle))


@command()
def runs(folder: Path = typer.Argument(..., help="Trace folder.")):
    """List a trace folder's runs: name, kind (trace, generation, probe, intervention), model, dtype, device, tokens,
    tables; pick one by name with `trace.run(NAME)`."""
    from .trace import TraceFolderError, open_trace
    from .trace.runs import catalogue_row

    try:
        manifests = open_trace(folder).manifests()
    except (TraceFolderError, FileNotFoundError) as error:
        _fail(str(error))
    rows = [catalogue_row(m) for m in manifests]
    typer.echo(f"{folder}: {len(rows)} run{'' if len(rows) == 1 else 's'}")
    for row in rows:
        typer.echo(f"  {row['run_id']}  {row['name'] or '(unnamed)'}  [{row['kind']}]  {row['model']}  {row['dtype']} on "
                   f"{row['device']}  {row['tokens']:,} tokens")
        typer.echo(f"      tables: {row['tables'] or 'none'}" + (f"\n      note: {row['note']}" if row["note"] else ""))


@command()
def schema():
    """Print every trace table's columns (meaning, dtype, units)."""
    from .trace import schema_markdown

    typer.echo(schema_markdown())


@command()
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


@command(name="check-dataset")
def check_dataset_command(dataset_dir: Path = typer.Argument(..., help="Dataset folder written by export.")):
    """Check an exported dataset's files against its card (rows, files, bytes per table; runs)."""
    from .trace.export import DatasetMismatch, check_dataset

    try:
        card = check_dataset(dataset_dir)
    except DatasetMismatch as error:
        _fail(str(error))
    typer.echo(f"{dataset_dir}: {len(card['workbench']['tables'])} tables match the card")


@command()
def doctor(
    family: Optional[List[str]] = typer.Option(None, "--family", help="Check only this family (repeatable; default "
                                               "every supported family)."),
    device: Optional[str] = typer.Option(None, help="Where the tiny models run: cpu, cuda, cuda:1 ... (default: cuda "
                                         "where there is a GPU, else cpu)."),
):
    """Versions, usable fast paths, and whether every capture site of every family resolves on this install (exit 0
    when all do, 1 otherwise). Paste its output into a bug report."""
    from .doctor import families, report

    unknown = sorted(set(family or ()) - set(families()))
    if unknown:
        _fail(f"unknown family {', '.join(unknown)}; known: {', '.join(families())}")
    from .loading import check_device

    try:
        check_device(device)
    except ValueError as error:
        _fail(str(error))
    lines, all_ok = report(list(family) if family else None, device)
    typer.echo("\n".join(lines))
    if not all_ok:
        raise typer.Exit(code=1)


def dashboard_script() -> Path:
    """The Streamlit entry script, shipped inside the package (works from a wheel install)."""
    return Path(__file__).resolve().parent / "app" / "streamlit_app.py"


@command(name="app")
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


def build_app() -> typer.Typer:
    """The `workbench` typer app, from the commands above; `trace` gets the capture flags of every capture kind
    registered now (a kind registered later, e.g. by a test, appears in the next build_app())."""
    from .cli_capture import with_capture_flags

    built = typer.Typer(add_completion=False, no_args_is_help=True, help="Look inside hybrid linear-attention MoE "
                        "models.")
    for name, function in COMMANDS:
        built.command(name=name)(with_capture_flags(function) if function in (trace, generate) else function)
    return built


app = build_app()


def main() -> None:
    """The `workbench` entry point: `app`, then a quick exit.

    Interpreter teardown after torch and transformers are imported takes about 0.9 s on the 2-core box (freeing
    every module and object), a fifth of `workbench trace`'s start-up budget. Once a command has returned (its
    files closed, its parts committed) nothing is left to free, so this exits without the teardown, after what a
    normal exit would still do: joining worker threads, running atexit handlers (Ray's shutdown among them) and
    flushing output. The same trade as Instagram's `atexit.register(os._exit, 0)`. An exception other than
    SystemExit propagates and exits the usual way, traceback and all.
    """
    try:
        app()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, (int, type(None))):
            print(stop.code, file=sys.stderr)
    import atexit
    import threading

    threading._shutdown()  # what a normal exit runs first: stops idle executor workers, joins non-daemon threads
    atexit._run_exitfuncs()  # then the atexit handlers; os._exit below skips both
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
