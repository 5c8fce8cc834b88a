"""`with capture(model, settings) as run:` attaches one recorder per capture kind the settings turn on and removes
every hook and patch in `finally`, also after an error. Nothing here names a capture kind (see recorder.py)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa
import torch

from ..adapters import Adapter, adapter_for_config
from .kernel_device import model_kernels_by_device
from .recorder import SequenceInfo, batchable, remove_all
from .settings import CaptureSettings


def moe_layers(model: torch.nn.Module, adapter: Adapter) -> dict[int, torch.nn.Module]:
    """Decoder-layer index -> router module, for every layer that has one (dense layers have none)."""
    return adapter.routers(model)


@dataclass
class CaptureRun:
    """Live handle of one capture context: the attached recorders by kind.

    run.begin_sequence(SequenceInfo(...))   # spans, needles: what the next forward call reads
    model(input_ids)
    records = run.collect()                 # {kind: record} of what each recorder saw, cleared
    """

    model: torch.nn.Module
    adapter: Adapter
    settings: CaptureSettings
    recorders: dict[str, object] = field(default_factory=dict)
    handles: list = field(default_factory=list)

    def recorder(self, kind: str):
        """The attached recorder of `kind`; a clear error when the settings did not turn it on."""
        try:
            return self.recorders[kind]
        except KeyError:
            raise ValueError(f"{kind} capture is off (CaptureSettings({kind}=True) turns it on)") from None

    def begin_sequence(self, sequence: SequenceInfo) -> None:
        for recorder in self.recorders.values():
            recorder.begin_sequence(sequence)

    def batchable(self, sequence: SequenceInfo) -> bool:
        """Whether every attached recorder can observe `sequence` as one row of a right-padded batch."""
        return all(batchable(recorder, sequence) for recorder in self.recorders.values())

    def begin_batch(self, sequences: list[SequenceInfo]) -> None:
        """What the next forward call reads: one SequenceInfo per batch row (row b, padded_tokens T)."""
        if len(sequences) == 1 and sequences[0].padded_tokens in (None, sequences[0].num_tokens):
            self.begin_sequence(sequences[0])
            return
        for recorder in self.recorders.values():
            recorder.begin_batch(sequences)

    def build_tables(self, records: dict, sequences: list[SequenceInfo]) -> dict[str, pa.Table]:
        """The tables of collected `records` (run.collect()) for every sequence of a batch, each table's rows in
        sequence order: a recorder with `batch_tables(record, sequences)` builds all rows at once, the others one
        sequence at a time. Touches no device: tracing runs it on a background thread (tracing/pipeline.py)."""
        tables: dict[str, list] = {}
        for kind, record in records.items():
            recorder = self.recorders[kind]
            if hasattr(recorder, "batch_tables"):
                built = [recorder.batch_tables(record, sequences)]
            else:
                built = [recorder.tables(record, sequence) for sequence in sequences]
            for part in built:
                for name, table in part.items():
                    tables.setdefault(name, []).append(table)  # the MTP layer's rows join the trunk's routing
        return {name: parts[0] if len(parts) == 1 else pa.concat_tables(parts) for name, parts in tables.items()}

    def collect(self, kind: str | None = None):
        """{kind: record} for every recorder that saw something since the last collect, or the record of one kind
        (None when it saw nothing)."""
        if kind is not None:
            return self.recorder(kind).collect()
        records = {k: r.collect() for k, r in self.recorders.items()}
        return {k: record for k, record in records.items() if record is not None}

    def tables(self, sequence: SequenceInfo) -> dict:
        """Collect every recorder and build its trace tables for `sequence`: {table name: Arrow table}."""
        return self.build_tables(self.collect(), [sequence])


@contextmanager
def capture(model: torch.nn.Module, settings: CaptureSettings | None = None, adapter: Adapter | None = None):
    """Observe `model`'s forward passes. Hooks never return a value and kernel wrappers return the kernel's own
    result, so outputs are unchanged.

    with capture(model, CaptureSettings(routing=True)) as run:
        model(input_ids)
        routing = run.collect("routing")
    """
    settings = settings or CaptureSettings()
    adapter = adapter or adapter_for_config(model.config)
    run = CaptureRun(model=model, adapter=adapter, settings=settings)
    try:
        run.handles.extend(model_kernels_by_device(model, adapter))  # CPU tensors never reach fla (kernel_device.py)
        for recorder in settings.recorders():
            run.handles.extend(recorder.attach(model, adapter))
            run.recorders[recorder.kind] = recorder
        yield run
    finally:
        remove_all(run.handles)
