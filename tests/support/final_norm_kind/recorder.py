"""The final_norm test kind's record and recorder: a forward hook on the decoder's final norm (returns None)."""

from dataclasses import dataclass

import torch

from .tables import final_norm_table


@dataclass
class FinalNormCapture:
    """norms: [N] fp32, the calls' tokens flattened (token t of batch row b is row b * T + t)."""

    norms: torch.Tensor


class FinalNormRecorder:
    kind = "final_norm"

    def __init__(self, stride: int):
        self.stride = stride
        self._norms: list[torch.Tensor] = []

    def attach(self, model, adapter) -> list:
        hook = lambda module, args, out: self._norms.append(out.detach().float().norm(dim=-1).reshape(-1))  # noqa: E731
        return [model.get_decoder().norm.register_forward_hook(hook)]

    def begin_sequence(self, sequence) -> None:
        pass

    def collect(self) -> FinalNormCapture | None:
        if not self._norms:
            return None
        record, self._norms = FinalNormCapture(torch.cat(self._norms).cpu()), []
        return record

    def tables(self, record: FinalNormCapture, sequence) -> dict:
        return {"final_norm": final_norm_table(sequence.seq_id, record.norms[sequence.rows], self.stride)}
