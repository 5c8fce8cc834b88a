"""Trace prompts end to end: tokenize, forward under `capture` (in right-padded batches), commit parts of one run.

Batches (`batch_tokens`): prompts sorted by length (within a window of WINDOW_BATCHES batches' worth of tokens,
tokenised as the run reaches it: `batches`) are grouped so that rows x longest row <= batch_tokens, and each
batch runs as one right-padded forward with no attention mask. Padding never changes a real token's values: every
layer is causal (attention row t reads keys <= t; the DeltaNet recurrence S_t = f(S_{t-1}, token t) and its causal
conv read tokens <= t; routing, norms and MLPs are per token), and padding sits after the last real token of its
row, so the real tokens compute exactly what they compute at batch 1 (tests/test_tracing_batches.py compares every
table against batch-1 traces). Rotary positions are 0..T-1 in every row, as at batch 1. The padding's own rows are
cut off before any table is built (SequenceInfo.rows). Prompts a recorder cannot batch (DeltaNet recall pairs,
snapshots counted from the end; a recorder without `begin_batch`) run alone.

Pipeline: the main thread runs a batch's forward and collects its records to the host, then hands them to the
TableBuilder, whose threads build the tables and add them to the writer (which encodes Parquet on its own threads)
while the main thread runs the next forward.
Parts: rows of finished prompts are committed every `part_tokens` tokens (TraceWriter.commit_part), so a run that
dies keeps its committed prompts and `resume=<run_id>` continues it. Ctrl-C (SIGINT) stops at the next batch
boundary: what ran is committed and TraceInterrupted says what was kept.
"""

from __future__ import annotations

import os
import platform
import queue
import signal
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterator, TypeVar

import numpy as np
import pyarrow as pa
import torch

from .adapters.facts import model_facts
from .capture import CaptureSettings, SequenceInfo, capture
from .loading import LoadedModel
from .prompts import Prompt
from .spans import SpanError, encode, prompt_token_spans
from .trace import SCHEMA_VERSION, TraceWriter
from .trace.attention_tables import spans_table
from .trace.tables import tokens_table
from .trace.writer import read_manifest

PACKAGES = ("workbench", "torch", "transformers", "pyarrow", "tokenizers", "safetensors")
PART_TOKENS = 131_072  # tokens of finished prompts per committed part


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_manifest(loaded: LoadedModel, settings: CaptureSettings, prompt_records: list[dict], started: datetime,
                 **extra) -> dict:
    """The run manifest every writer of a run commits (see README: trace folder layout)."""
    model, adapter = loaded.model, loaded.adapter
    return {
        "schema_version": SCHEMA_VERSION,
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "model": loaded.describe(),
        "family": adapter.name,
        **model_facts(adapter, model, mtp_layers=1 if settings.mtp else 0),  # what pages read (adapters/facts.py)
        "capture": settings.to_dict(),
        "tokenizer": _tokenizer_facts(loaded.tokenizer),
        "prompts": prompt_records,
        "num_tokens": sum(record["num_tokens"] for record in prompt_records),
        "packages": package_versions(),
        **extra,
    }


@dataclass
class RunSummary:
    run_id: str
    manifest_path: Path
    num_sequences: int  # prompts the run holds (all parts, earlier sessions of a resumed run included)
    num_tokens: int
    traced_sequences: int = 0  # prompts this call ran
    skipped: list[str] = field(default_factory=list)  # prompt ids already committed (resume)


class TraceInterrupted(Exception):
    """Ctrl-C stopped a trace at a batch boundary; `summary` says what the run holds (committed, resumable)."""

    def __init__(self, summary: RunSummary | None, remaining: int):
        self.summary, self.remaining = summary, remaining
        kept = "nothing was committed" if summary is None else (
            f"run {summary.run_id} keeps {summary.num_sequences} prompts ({summary.num_tokens} tokens)")
        super().__init__(f"interrupted: {kept}; {remaining} prompts not traced")


def _tokenizer_facts(tokenizer) -> dict:
    return {
        "name_or_path": getattr(tokenizer, "name_or_path", None),
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
    }


@dataclass
class Encoded:
    """One prompt ready to run: token ids (truncated; `token_ids` an int64 numpy array, so a batch is built by
    array copies, not from Python lists), spans in tokens, and its manifest record."""

    index: int
    prompt: Prompt
    token_ids: np.ndarray
    spans: list

    def sequence(self, row: int = 0, padded_tokens: int | None = None) -> SequenceInfo:
        return SequenceInfo(self.prompt.id, len(self.token_ids), self.spans, row, padded_tokens)

    def record(self) -> dict:
        p = self.prompt
        return {"id": p.id, "label": p.label, "num_tokens": len(self.token_ids), "text": p.text, **p.extra}


def padded_ids(rows: list[Encoded], pad: int) -> torch.Tensor:
    """[rows, longest] input ids of a batch, each row's tokens first and `pad` after them (right padding)."""
    ids = np.full((len(rows), max(len(e.token_ids) for e in rows)), pad, dtype=np.int64)
    for b, e in enumerate(rows):
        ids[b, : len(e.token_ids)] = e.token_ids
    return torch.from_numpy(ids)


def encode_prompt(tokenizer, index: int, prompt: Prompt, max_tokens: int | None) -> Encoded:
    """One prompt's token ids (truncated) and spans; an empty prompt or a bad span raises naming the prompt."""
    token_ids = encode(tokenizer, prompt.text)
    if max_tokens is not None:
        token_ids = token_ids[:max_tokens]
    if len(token_ids) == 0:
        raise ValueError(f"prompt {prompt.id!r} tokenizes to no tokens")
    try:
        spans = prompt_token_spans(tokenizer, prompt.text, prompt.extra.get("spans", []), len(token_ids))
    except SpanError as error:
        raise SpanError(f"prompt {prompt.id!r}: {error}") from None
    return Encoded(index, prompt, np.asarray(token_ids, dtype=np.int64), spans)


WINDOW_BATCHES = 4  # batches' worth of tokens tokenised and sorted by length together


def batches(tokenizer, prompts: list[Prompt], max_tokens: int | None, batch_tokens: int | None,
            alone=lambda encoded: False, skip: frozenset[str] = frozenset()) -> Iterator[list[Encoded]]:
    """The prompts to run, batch by batch, tokenised a window at a time as the run goes (so the first forward
    starts after one window, and the writer's threads work while later windows are tokenised): a window is
    WINDOW_BATCHES x batch_tokens tokens of prompts in file order (one prompt at batch 1), planned by
    `plan_batches`. Prompts in `skip` (committed earlier) are not tokenised; `alone(encoded)` marks prompts that run
    on their own. A bad prompt raises when its window is reached."""
    def planned(window):
        for batch in plan_batches([len(e.token_ids) for e in window], batch_tokens, [alone(e) for e in window]):
            yield [window[i] for i in batch]

    window, tokens = [], 0
    for index, prompt in enumerate(prompts):
        if prompt.id in skip:
            continue
        window.append(encode_prompt(tokenizer, index, prompt, max_tokens))
        tokens += len(window[-1].token_ids)
        if not batch_tokens or tokens >= WINDOW_BATCHES * batch_tokens:
            yield from planned(window)
            window, tokens = [], 0
    if window:
        yield from planned(window)


Item = TypeVar("Item")


def prefetched(items: Iterator[Item], depth: int) -> Iterator[Item]:
    """`items`, produced on a background thread up to `depth` ahead of the consumer: the prompts are tokenised
    and their batches' input ids built while the main thread runs the forwards (the tokenizer releases the GIL).
    Order is kept, and an exception raised by `items` is raised here when the consumer reaches it (after every item
    before it). Closing the returned generator (contextlib.closing) stops the thread at its next item."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # handed to the consumer, raised in its thread
            put((None, error))

    threading.Thread(target=produce, name="workbench-tokenize", daemon=True).start()
    try:
        while True:
            item, error = ahead.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()


def plan_batches(lengths: list[int], batch_tokens: int | None, alone: list[bool]) -> list[list[int]]:
    """Indices of each batch: none (batch_tokens None) = one prompt per batch in file order; else prompts sorted by
    length (longest first, stable) packed while rows x longest <= batch_tokens, and `alone` prompts on their own."""
    if not batch_tokens:
        return [[i] for i in range(len(lengths))]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        if alone[i]:
            batches.append([i])
            continue
        if current and (len(current) + 1) * lengths[current[0]] > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@contextmanager
def stop_on_sigint():
    """First Ctrl-C sets the returned event (the trace stops at the next batch boundary); a second one raises
    KeyboardInterrupt at once (what is not committed is dropped). Outside the main thread: an event nobody sets."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nCtrl-C: stopping after the current batch and committing it (Ctrl-C again drops it)", flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def check_resume(manifest: dict, settings: CaptureSettings, loaded: LoadedModel, max_tokens, prompts) -> set[str]:
    """The committed prompt ids of a run to resume, after checking it was traced the same way."""
    if CaptureSettings.from_dict(manifest["capture"]) != settings:
        raise ValueError(f"run {manifest['run_id']} was traced with capture settings {manifest['capture']}; resume it "
                         "with the same capture options")
    if manifest["model"].get("config_hash") != loaded.describe().get("config_hash"):
        raise ValueError(f"run {manifest['run_id']} was traced with model {manifest['model'].get('source')} "
                         f"(config hash {manifest['model'].get('config_hash')}); resume it with the same --model")
    if manifest.get("max_tokens") != max_tokens:
        raise ValueError(f"run {manifest['run_id']} was traced with max_tokens {manifest.get('max_tokens')}; resume "
                         "it with the same --max-tokens")
    committed = {p["id"] for p in manifest["prompts"]}
    unknown = committed - {p.id for p in prompts}
    if unknown:
        raise ValueError(f"run {manifest['run_id']} holds prompts not in the given prompts ({sorted(unknown)[:3]}...): "
                         "resume it with the same prompts file")
    return committed


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
) -> RunSummary:
    """Run every prompt and append one run to `out`, committing a part every `part_tokens` tokens.

    batch_tokens: right-padded batches of up to this many tokens (rows x longest row); None = batch 1.
    resume: the run id of a run that stopped; its committed prompts are skipped. join + run_id: add parts to a run
    another process started (distributed engine; the caller finishes it); writer_tag names this call's part files.
    An error before the first part leaves `out` as it was; an error later keeps the committed parts (resumable); a
    prompt that cannot be tokenised is reached as the run goes (`batches`). Ctrl-C raises TraceInterrupted.
    """
    for name, value in (("max_tokens", max_tokens), ("batch_tokens", batch_tokens)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1 (or None), got {value!r}")  # [:-n] would cut the end
    settings = settings or CaptureSettings()
    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    started = datetime.now(timezone.utc)
    with TraceWriter(out, run_id=resume or run_id, resume=resume is not None, join=join,
                     tag=writer_tag) as writer, \
            capture(model, settings, loaded.adapter) as run, stop_on_sigint() as stop:
        skipped: set[str] = set()
        if resume is not None:
            skipped = check_resume(read_manifest(writer.root, writer.run_id), settings, loaded, max_tokens, prompts)
        todo = len(prompts) - len(skipped)
        base = run_manifest(loaded, settings, [], started, max_tokens=max_tokens, batch_tokens=batch_tokens)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        done = 0
        bar = _progress(todo, progress)
        vocab = token_strings(tokenizer)  # before the tokenising thread starts: one user of the tokenizer at a time
        plan = batches(tokenizer, prompts, max_tokens, batch_tokens, alone=lambda e: not run.batchable(e.sequence()),
                       skip=frozenset(skipped))
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


BUILD_THREADS = min(4, os.cpu_count() or 1)  # batches whose tables are built at once
MAX_BATCHES_AHEAD = 2 * BUILD_THREADS  # collected batches that may wait for their tables while forwards go on


def token_strings(tokenizer) -> pa.Array:
    """The token string of every id (the tokens table's `token` column is a `take` from it)."""
    return pa.array(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))), type=pa.string())


class TableBuilder:
    """Turns each collected batch into trace rows off the main thread, so the next forward runs meanwhile.

    Building a batch's tables (host records -> Arrow; no device work: collect moved everything to the CPU) runs on
    a pool of BUILD_THREADS threads (numpy, torch and Arrow release the GIL in their loops). One sink thread then
    takes the batches in submission order, adds their tables to the writer and commits a part whenever
    `part_tokens` tokens of finished prompts are pending; it is the only thread that touches the writer until
    `finish()`. An error on either thread is raised in the main thread by the next `submit` or by `finish`;
    leaving the `with` block on an error drops the queued batches and waits for those in flight, so the writer's
    abort cleans up after them (committed parts stay)."""

    def __init__(self, writer: TraceWriter, run, base: dict, part_tokens: int, vocab: pa.Array):
        self.writer, self.run, self.base, self.part_tokens, self.vocab = writer, run, base, part_tokens, vocab
        self.pending: list[dict] = []  # prompt records added since the last commit
        self._build = ThreadPoolExecutor(BUILD_THREADS, thread_name_prefix="trace-tables")
        self._sink = ThreadPoolExecutor(1, thread_name_prefix="trace-sink")
        self._jobs: deque[Future] = deque()  # sink jobs, oldest first

    def __enter__(self) -> "TableBuilder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for job in self._jobs:
            job.cancel()
        self._sink.shutdown(wait=True, cancel_futures=True)
        self._build.shutdown(wait=True, cancel_futures=True)

    def submit(self, rows: list[Encoded], sequences: list[SequenceInfo], records: dict) -> None:
        while self._jobs and (self._jobs[0].done() or len(self._jobs) >= MAX_BATCHES_AHEAD):
            self._jobs.popleft().result()  # re-raises a builder error here, in the main thread
        # one build job per capture kind (and one for tokens and spans), so a batch's tables build in parallel: the
        # last batch's, which nothing overlaps, take the slowest kind's time instead of the sum
        built = [self._build.submit(self._token_tables, rows)]
        built += [self._build.submit(self.run.build_tables, {kind: record}, sequences)
                  for kind, record in records.items()]
        self._jobs.append(self._sink.submit(self._add, rows, built))

    def finish(self) -> None:
        """Wait for every submitted batch, then commit what is pending."""
        while self._jobs:
            self._jobs.popleft().result()
        if self.pending:
            self._commit()

    def _token_tables(self, rows: list[Encoded]) -> dict[str, pa.Table]:
        tables = {"tokens": tokens_table([e.prompt.id for e in rows], [e.token_ids for e in rows],
                                         [e.prompt.label for e in rows], self.vocab)}
        spans = [spans_table(e.prompt.id, e.spans) for e in rows if e.spans]
        if spans:
            tables["spans"] = pa.concat_tables(spans)
        return tables

    def _add(self, rows: list[Encoded], built: list[Future]) -> None:
        for job in built:  # in submission order: a table two kinds write (routing: trunk, then MTP) keeps its order
            for name, table in job.result().items():
                self.writer.add(name, table)
        self.pending.extend(e.record() for e in rows)
        if sum(r["num_tokens"] for r in self.pending) >= self.part_tokens:
            self._commit()

    def _commit(self) -> None:
        self.writer.commit_part(self.pending, self.base)
        self.pending = []


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
    from .trace.folder import manifest_path

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
