"""What runs beside the forwards of a trace: the table-building pool, and Ctrl-C handling at batch boundaries.

The main thread runs a batch's forward and collects its records to the host, then hands them to the TableBuilder,
whose threads build the tables and add them to the writer (which encodes Parquet on its own threads) while the main
thread runs the next forward. Rows of finished prompts are committed every `part_tokens` tokens
(TraceWriter.commit_part). `stop_on_sigint` turns the first Ctrl-C into a request to stop at the next batch
boundary, so what ran is committed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pyarrow as pa

from ..capture import SequenceInfo
from ..trace import TraceWriter
from ..trace.tables import spans_table, tokens_table
from .batching import Encoded

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
