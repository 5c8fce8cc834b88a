"""The Recorder protocol: a new capture kind is one recorder class; capture() attaches it, hands it the sequence,
collects its record and removes its handles, with no edit to capture(), trace_prompts or the CLI."""

import pytest
import pyarrow as pa
import torch
from support.model_state import hook_count

from workbench.capture import RECORDER_KINDS, CaptureSettings, SequenceInfo, capture, recorder_kind


class FinalNormRecorder:
    """A toy capture kind: the L2 norm of the final RMSNorm's output per token, [N] fp32."""

    kind = "final_norm"

    def __init__(self):
        self.norms, self.sequences = [], []

    @staticmethod
    def enabled(settings):
        return True

    @classmethod
    def from_settings(cls, settings):
        return cls()

    def attach(self, model, adapter):
        norm = model.get_submodule("model.norm")
        return [norm.register_forward_hook(lambda m, a, out: self.norms.append(out.detach().float().norm(dim=-1)))]

    def begin_sequence(self, sequence):
        self.sequences.append(sequence.seq_id)

    def collect(self):
        record, self.norms = (torch.cat([n.reshape(-1) for n in self.norms]) if self.norms else None), []
        return record

    def tables(self, record, sequence):
        return {"final_norm": pa.table({"seq_id": [sequence.seq_id] * len(record), "norm": record.numpy()})}


@pytest.fixture
def final_norm_kind():
    recorder_kind(FinalNormRecorder)
    try:
        yield
    finally:
        RECORDER_KINDS.pop("final_norm")


def test_a_new_recorder_kind_runs_through_capture(tiny_next, final_norm_kind):
    ids = torch.randint(0, tiny_next.config.vocab_size, (1, 11), generator=torch.Generator().manual_seed(2))
    hooks = hook_count(tiny_next)
    seen = {}
    handle = tiny_next.model.norm.register_forward_hook(lambda m, a, out: seen.update(out=out))
    try:
        with torch.no_grad(), capture(tiny_next, CaptureSettings(routing=False)) as run:
            assert list(run.recorders) == ["final_norm"]
            run.begin_sequence(SequenceInfo("s", 11))
            tiny_next(input_ids=ids, use_cache=False)
            tables = run.tables(SequenceInfo("s", 11))
    finally:
        handle.remove()
    assert hook_count(tiny_next) == hooks
    assert run.recorder("final_norm").sequences == ["s"] and set(tables) == {"final_norm"}
    expected = seen["out"].double().norm(dim=-1).reshape(-1)
    torch.testing.assert_close(torch.tensor(tables["final_norm"].column("norm").to_numpy()).double(), expected,
                               atol=1e-5, rtol=1e-6)


def test_duplicate_kind_and_missing_recorder_are_refused(tiny_next):
    with pytest.raises(ValueError, match="already registered"):
        recorder_kind(RECORDER_KINDS["routing"])
    with capture(tiny_next, CaptureSettings(routing=False)) as run:
        with pytest.raises(ValueError, match="deltanet capture is off"):
            run.recorder("deltanet")


def test_removed_on_error_unhooks_what_attach_registered_before_it_failed():
    """A recorder's attach that fails half-way leaves no hook on the model; one that succeeds keeps them all."""
    from workbench.capture.recorder import removed_on_error

    layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    handles = []
    with pytest.raises(RuntimeError, match="third layer"):
        with removed_on_error(handles):
            for i, layer in enumerate(layers):
                if i == 2:
                    raise RuntimeError("no router on the third layer")
                handles.append(layer.register_forward_hook(lambda *a: None))
    assert handles == [] and all(not layer._forward_hooks for layer in layers)
    with removed_on_error(handles):
        handles += [layer.register_forward_hook(lambda *a: None) for layer in layers]
    assert len(handles) == 3 and all(len(layer._forward_hooks) == 1 for layer in layers)
