"""MTP recorder: runs the checkpoint's multi-token-prediction head beside the trunk and records its draft acceptance.

Sites, all hooks that return None (the trunk's outputs are untouched):
  - forward pre-hook on the input embedding: the input ids [B, T] of the forward call;
  - forward hook on the decoder's final norm: h [B, T, H], the trunk's final-normed hidden states; the MTP head
    (workbench.mtp, loaded from the `mtp.*` tensors of the folder the model was loaded from) runs right there,
    inside the trunk's forward, under no_grad: row t drafts x_{t+2} from h_t and x_{t+1};
  - forward hook on the output embedding (lm_head): the trunk's logits [B, T, V]; the acceptance statistics
    (workbench.mtp.acceptance.acceptance_tensors) are reduced on the device and kept until collect.
The head calls the embedding and the lm_head itself; those calls are ignored (`_in_head`).
The MTP layer's router is hooked like a trunk router (capture/routing/'s hooks) under layer index
L = config.num_hidden_layers (the index vLLM gives the first MTP layer), so its routing rows join the
`routing` table under that layer number.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...adapters.upstream import site_error
from ..recorder import CaptureError, SequenceInfo, removed_on_error
from ..routing.recorder import RoutingRecorder
from ..transfer import to_host
from .record import MTPCapture
from .tables import mtp_table


class MTPRecorder:
    kind = "mtp"

    def __init__(self):
        self.head = None
        self.model = None
        self.mtp_layer = None
        self._ids: torch.Tensor | None = None
        self._drafts: torch.Tensor | None = None
        self._in_head = False
        self._rows: list[dict[str, torch.Tensor]] = []
        self.routing = RoutingRecorder()

    def attach(self, model: torch.nn.Module, adapter) -> list:
        from ...mtp import NoMTPWeights, load_mtp_head

        if not isinstance(getattr(model.get_decoder(), "norm", None), torch.nn.Module):
            raise site_error(adapter.name, f"{type(model.get_decoder()).__name__}.norm",
                             "the decoder has no final norm module to read the hidden states the MTP head takes")
        folder = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
        if not folder or not Path(folder).is_dir():
            raise CaptureError(f"MTP capture needs the model's checkpoint folder to read mtp.* from; got {folder!r}")
        try:
            self.head = load_mtp_head(model, folder)
        except (NoMTPWeights, FileNotFoundError, ValueError) as error:
            raise CaptureError(str(error)) from None
        self.model = model
        self.mtp_layer = model.get_decoder().config.num_hidden_layers
        handles = []
        with removed_on_error(handles):
            handles.append(model.get_input_embeddings().register_forward_pre_hook(self._ids_hook))
            handles.append(model.get_decoder().norm.register_forward_hook(self._final_norm_hook))
            handles.append(model.get_output_embeddings().register_forward_hook(self._logits_hook))
            if adapter.router is not None:
                handles += self.routing.attach_layer(self.head.layers[0], self.mtp_layer, adapter)
        return handles

    def begin_sequence(self, sequence: SequenceInfo) -> None:
        pass

    def _ids_hook(self, module, args):
        if not self._in_head:
            self._ids = args[0].detach()  # [B, T] input ids

    @torch.no_grad()
    def _final_norm_hook(self, module, args, output):
        from ...mtp import mtp_logits

        if self._ids is None or self._ids.shape[1] < 2:
            self._drafts = None  # one token: nothing to draft
            return
        self._in_head = True
        try:
            self._drafts = mtp_logits(self.model, self.head, self._ids, output.detach())  # [B, T-1, V]
        finally:
            self._in_head = False

    @torch.no_grad()
    def _logits_hook(self, module, args, output):
        from ...mtp.acceptance import acceptance_tensors

        if self._in_head or self._drafts is None:
            return
        logits = output.detach()  # [B, T, V]
        for b in range(logits.shape[0]):
            stats = acceptance_tensors(self._ids[b], logits[b], self._drafts[b])
            stats["draft_correct"] = torch.cat([stats["draft_correct"].to(torch.int8),
                                                torch.full((1,), -1, dtype=torch.int8, device=logits.device)])
            self._rows.append(stats)
        self._drafts = None

    def collect(self) -> MTPCapture | None:
        """Acceptance rows of every sequence since the last collect (on the CPU, one copy per field) and the
        MTP layer's routing; None when nothing was drafted."""
        if not self._rows:
            self.routing.collect()  # drop router records of a forward without drafts
            return None
        names = ("draft", "trunk_next", "accepted", "draft_correct", "p_accepted", "tie")
        host = to_host({name: torch.stack([row[name] for row in self._rows]) for name in names})  # [S, T-1] each
        self._rows.clear()
        return MTPCapture(mtp_layer=self.mtp_layer, routing=self.routing.collect(), **host)

    def tables(self, record: MTPCapture, sequence: SequenceInfo) -> dict:
        tables = {"mtp": mtp_table(sequence.seq_id, record, row=0, num_tokens=sequence.num_tokens)}
        if record.routing is not None:
            # the MTP layer runs one row per trunk position but the last: its routing has T-1 rows
            tables.update(self.routing.tables(record.routing, SequenceInfo(sequence.seq_id, sequence.num_tokens - 1)))
        return tables
