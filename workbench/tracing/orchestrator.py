"""`trace_prompts`: trace prompts end to end into one run of a trace folder, and what a run's caller gets back.

Tokenise (`batching.batches`, on a background thread), forward under `capture` in right-padded batches, build the tables
beside the next forward (`pipeline.TableBuilder`), and commit parts of one run.
Parts: rows of finished prompts are committed every `part_tokens` tokens (TraceWriter.commit_part), so a run that
dies keeps its committed prompts and `resume=<run_id>` continues it (`manifest.check_resume`). Ctrl-C (SIGINT)
stops at the next batch boundary: what ran is committed and TraceInterrupted says what was kept.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import torch

from ..capture import CaptureSettings, capture
from ..inputs.prompts import Prompt
from ..loading import LoadedModel
from ..trace import TraceWriter
from ..trace.folder import manifest_path
from ..trace.writer import read_manifest
from .batching import WINDOW_BATCHES, Encoded, batches, check_positions, max_positions, padded_ids, prefetched
from .manifest import check_resume, named, run_manifest
from .pipeline import TableBuilder, stop_on_sigint, token_strings

PART_TOKENS = 131_072  # tokens of finished prompts per committed part


@dataclass
class RunSummary:
    run_id: str
    manifest_path: Path
    num_sequences: int  # prompts the run holds (all parts, earlier sessions of a resumed run included)
    num_tokens: int
    traced_sequences: int = 0  # prompts this call ran
    skipped: list[str] = field(default_factory=list)  # prompt ids already committed (resume)


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class TraceInterrupted(Exception):
    """Ctrl-C stopped a trace at a batch boundary; `summary` says what the run holds (committed, resumable)."""

    def __init__(self, summary: RunSummary | None, remaining: int):
        self.summary, self.remaining = summary, remaining
        kept = "nothing was committed" if summary is None else (
            f"run {summary.run_id} keeps {_counted(summary.num_sequences, 'prompt')} "
            f"({_counted(summary.num_tokens, 'token')})")
        super().__init__(f"interrupted: {kept}; {_counted(remaining, 'prompt')} not traced")


@torch.inference_mode()
def trace_prompts(
    loaded: LoadedModel,
    prompts: list[Prompt],
    out: str | Path,
    settings: CaptureSettings | None = None,
    max_tokens: int | None = None,
    progress: bool = True,
    batch_tokens: int | None = None,
    part_tokens: int = PART_TOKENS,
    resume: str | None = None,
    run_id: str | None = None,
    join: bool = False,
    writer_tag: str | None = None,
    name: str | None = None,
    note: str | None = None,
) -> RunSummary:
    """Run every prompt and append one run to `out`, committing a part every `part_tokens` tokens.

    batch_tokens: right-padded batches of up to this many tokens (rows x longest row); None = batch 1.
    name, note: the run's name (pick it later with `trace.run(name)`) and a note, kept in the manifest.
    resume: the run id of a run that stopped; its committed prompts are skipped. join + run_id: add parts to a run
    another process started (distributed engine; the caller finishes it); writer_tag names this call's part files.
    An error before the first part leaves `out` as it was; an error later keeps the committed parts (resumable); a
    prompt that cannot be tokenised is reached as the run goes (`batches`); a prompt longer than the model's
    max_position_embeddings (after `max_tokens`) is refused before any forward. Ctrl-C raises TraceInterrupted.
    """
    for option, value in (("max_tokens", max_tokens), ("batch_tokens", batch_tokens)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{option} must be an integer >= 1 (or None), got {value!r}")  # [:-n] would cut the end
    settings = settings or CaptureSettings()
    model, tokenizer = loaded.model, loaded.tokenizer
    limit = max_positions(model.config)
    if resume is None:  # a resumed run checks the prompts it still has to run, below
        check_positions(tokenizer, prompts, max_tokens, limit)
    device = next(model.parameters()).device
    started = datetime.now(timezone.utc)
    with TraceWriter(out, run_id=resume or run_id, resume=resume is not None, join=join,
                     tag=writer_tag) as writer, \
            capture(model, settings, loaded.adapter) as run, stop_on_sigint() as stop:
        skipped: set[str] = set()
        if resume is not None:
            skipped = check_resume(writer.root, writer.run_id, read_manifest(writer.root, writer.run_id), settings,
                                   max_tokens=max_tokens, model=loaded.describe(), prompts=prompts)
            check_positions(tokenizer, prompts, max_tokens, limit, frozenset(skipped))
        todo = len(prompts) - len(skipped)
        base = run_manifest(loaded, settings, [], started, max_tokens=max_tokens, batch_tokens=batch_tokens,
                            **named(name, note))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        done = 0
        bar = _progress(todo, progress)
        vocab = token_strings(tokenizer)  # before the tokenising thread starts: one user of the tokenizer at a time
        plan = batches(tokenizer, prompts, max_tokens, batch_tokens, alone=lambda e: not run.batchable(e.sequence()),
                       skip=frozenset(skipped), limit=limit)
        with_ids = ((rows, padded_ids(rows, pad)) for rows in plan)  # built on the tokenising thread too
        with closing(prefetched(with_ids, WINDOW_BATCHES)) as ready, \
                TableBuilder(writer, run, base, part_tokens, vocab) as builder:
            while (batch := _next_batch(ready, builder, writer)) is not None:
                rows, ids = batch
                sequences = [e.sequence(b, ids.shape[1]) for b, e in enumerate(rows)]
                run.begin_batch(sequences)
                model(input_ids=ids.to(device), use_cache=False)  # no attention mask: causal, padding on the right
                builder.submit(rows, sequences, run.collect())
                done += len(rows)
                bar.update(len(rows))
                if stop.is_set():
                    break
            builder.finish()  # waits for the tables and commits what is left
        bar.close()
        manifest = read_manifest(writer.root, writer.run_id)
        if stop.is_set() and done < todo:
            writer.close()
            summary = None if manifest is None else _summary(writer, manifest, done, skipped)
            raise TraceInterrupted(summary, todo - done)
        if join:
            writer.close()
            return _summary(writer, manifest, done, skipped)
        if manifest is None:  # resumed a run whose prompts were all committed: nothing new ran
            raise RuntimeError(f"run {writer.run_id} has no committed part")
        path = writer.finish(order=[p.id for p in prompts])
        return _summary(writer, read_manifest(writer.root, writer.run_id), done, skipped, path)


def _next_batch(ready: Iterator[tuple[list[Encoded], torch.Tensor]], builder: TableBuilder,
                writer: TraceWriter) -> tuple[list[Encoded], torch.Tensor] | None:
    """The next batch (its prompts and padded input ids), or None at the end. A prompt that cannot be tokenised
    (reached as the run goes) stops the run after committing every batch that ran, so `--resume` continues once the
    prompt is fixed."""
    try:
        return next(ready)
    except StopIteration:
        return None
    except ValueError as error:  # SpanError too
        builder.finish()
        if read_manifest(writer.root, writer.run_id) is None:
            raise
        raise ValueError(f"{error} (the prompts before it are committed in run {writer.run_id}: fix the prompt and "
                          f"trace again with --resume {writer.run_id})") from error


def _summary(writer: TraceWriter, manifest: dict | None, done: int, skipped: set[str], path=None) -> RunSummary:
    prompts = manifest["prompts"] if manifest else []
    return RunSummary(writer.run_id, path or manifest_path(writer.root, writer.run_id), len(prompts),
                      sum(p["num_tokens"] for p in prompts), done, sorted(skipped))


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tracing", unit="prompt")
