"""The Recorder protocol: one shape for every capture kind (capture/<kind>/recorder.py; kinds are registered in
kind.py).

A recorder
  1. `attach(model, adapter)`: registers hooks / patches through the adapter and returns their handles (anything
     with `.remove()`); `capture()` removes every handle in `finally`, also after an error. If attach itself
     fails, it removes what it had registered before raising.
  2. `begin_sequence(sequence)`: learns what the next forward call reads (spans, needle positions); optional.
     `begin_batch(sequences)` (optional): the same for a right-padded batch, one SequenceInfo per row; a recorder
     without it (or whose `batchable(sequence)` says False) makes tracing run those prompts one at a time.
  3. `collect()`: after one or more forward calls, returns its typed record (capture/<kind>/record.py), or None when
     it saw nothing, and clears.
  4. `tables(record, sequence)`: hands the record to its kind's table builder (capture/<kind>/tables.py) and
     returns {table name: Arrow table} for the trace writer. Optional `batch_tables(record, sequences)`: the same
     for every row of a batch at once (vectorised; CaptureRun.build_tables uses it when present).
A recorder is made by its kind's settings (`KindSettings.recorder()`); `capture()`, `trace_prompts` and the CLI loop
over the settings' kinds and never name one.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import torch


class CaptureError(ValueError):
    """A capture kind cannot run on this model (no layer of the kind it observes, an unsupported implementation)."""


@dataclass(frozen=True)
class SequenceInfo:
    """What the next forward call reads: one prompt of `num_tokens` tokens and its named spans
    (workbench.inputs.spans.TokenSpan). In a right-padded batch (tracing/batching.py) the prompt is batch row `row` of a call of
    `padded_tokens` tokens per row; its tokens are rows `rows` of a record's flattened [B * T] token axis."""

    seq_id: str
    num_tokens: int
    spans: Sequence = field(default_factory=tuple)
    row: int = 0
    padded_tokens: int | None = None  # T of the batch; None = num_tokens (batch 1, no padding)
    token_ids: Sequence | None = field(default=None, compare=False)  # the prompt's ids (attribution targets)

    @property
    def rows(self) -> slice:
        """This sequence's rows among the call's flattened tokens (token t of batch row b is row b * T + t)."""
        first = self.row * (self.padded_tokens or self.num_tokens)
        return slice(first, first + self.num_tokens)


class Recorder(Protocol):
    kind: str

    def attach(self, model: torch.nn.Module, adapter) -> list: ...

    def begin_sequence(self, sequence: SequenceInfo) -> None: ...

    def collect(self) -> Any | None: ...

    def tables(self, record, sequence: SequenceInfo) -> dict: ...


def batchable(recorder, sequence: SequenceInfo) -> bool:
    """Whether `recorder` can observe `sequence` as one row of a right-padded batch."""
    if not hasattr(recorder, "begin_batch"):
        return False
    check = getattr(recorder, "batchable", None)
    return True if check is None else bool(check(sequence))


def remove_all(handles: list) -> None:
    """Remove handles newest first (a patch of a patch unwinds in order) and empty the list."""
    while handles:
        handles.pop().remove()


@contextmanager
def removed_on_error(handles: list):
    """For a recorder's attach: hooks registered into `handles` inside the block are all removed (newest first) if
    the block raises, and the error goes on; a model is never left half-hooked."""
    try:
        yield handles
    except BaseException:
        remove_all(handles)
        raise


class CallbackHandle:
    """A handle whose remove() runs a function once (restore an attribute, drop a registry entry)."""

    def __init__(self, undo):
        self._undo = undo

    def remove(self) -> None:
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()


class KernelPatch:
    """Replaces `module.<name>` with `make_wrapper(original)`; `remove()` puts the original back. It looks like
    a hook handle, so capture's finally removes it with the hooks (also after an error). Patches of one global nest
    (two captures, or two recorders, each wrap what they found): removed newest first (remove_all, nested `with`
    blocks) they unwind to the original."""

    def __init__(self, module, name: str, make_wrapper):
        self.module, self.name = module, name
        self.original = getattr(module, name)
        setattr(module, name, make_wrapper(self.original))

    def remove(self) -> None:
        setattr(self.module, self.name, self.original)
