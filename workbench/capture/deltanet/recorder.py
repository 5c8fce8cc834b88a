"""Gated DeltaNet state capture: exact per-token recurrent-state norms, gates and planted-pair recall.

How it observes (transformers 5.24; pinned by tests/capture/test_deltanet_capture.py): the linear-attention block
of each family (the adapter's LinearAttentionSite) calls module globals of its modeling file by name on every call:
the chunk kernel (prefill, any length; Gated DeltaNet: `torch_chunk_gated_delta_rule`, Kimi Delta Attention:
`chunk_kimi_delta_attention`) and the recurrent one (cached one-token decode). `capture(model,
CaptureSettings(deltanet=True))` replaces each global, in the modeling file that defines the block's class, with a
wrapper that calls the original with the same arguments and returns its result untouched, so whatever the global
was (fla's kernel or the torch fallback) still runs. A forward pre-hook on every linear-attention block names the
decoder layer the next kernel call belongs to. `capture`'s finally undoes every patch and hook.

What the wrapper sees per call, in execution order (shapes as transformers passes them):
    query, key     [B, T, Hk, K]  after the causal conv + SiLU, before the kernel's L2 norm
    value          [B, T, Hv, V]  after the causal conv + SiLU
    g              [B, T, Hv]     log decay, <= 0; decay factor exp(g) in (0, 1]; half-life ln2 / -g tokens
                   [B, T, Hv, K]  per key channel (Kimi Delta Attention); per-token gate columns average g over K
    beta           [B, T, Hv]     write strength sigmoid(b) in (0, 1)
    initial_state  [B, Hv, K, V]  the cache's state (decode, chunked prefill) or None (a fresh sequence)
Statistics are computed on the kernel's device, before the original kernel runs (torch path) or inside it, as
fla's recursion returns its states (fla path; the initial state is cloned first, since the cache overwrites it
in place after the kernel), and stay there until `collect()` copies each field off once. State snapshots'
spectra (an SVD per head) are computed on the host at collect.

Needle contribution (capture/deltanet/contribution.py): for a prompt with named spans, each sequence-starting
prefill call also keeps its corrected values v_new (torch path: from the chunked recompute; fla path: the ones the
model's own fla recursion returned) and, once the kernel has returned, decomposes the kernel's own output o at the
query rows over the spans (ops.span_contribution). Recall readouts also give retention against the readout right
after each key's write (ops.state_norms.retention_metrics).

Paths (settings.deltanet_path; ops/state_norms/dispatch.py runs them): "torch", a loop over 64-token chunks (CPU
default; Kimi Delta Attention always); "fla", the chunk-start states h and corrected values v_new the model's own
fla kernel computes (capture also wraps fla's chunk recursion, `chunk_gated_delta_rule_fwd_h`, and takes them as
they come out: no second recursion; h in the kernel's dtype, so these are the norms of the states the model reads);
"fla-recompute" where the model's kernel does not run that recursion. "auto" = fla for prefill on CUDA when fla
imports and calibrates, else torch; decode steps always torch. `DeltaNetCapture.path` says which ran.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass

import torch

from ...adapters import LINEAR_ATTENTION
from ...adapters.upstream import kernel_signature
from ...ops.state_norms import fla_states, state_spectrum
from ...ops.state_norms.dispatch import call_state_stats, state_path
from ...ops.state_norms.fla_backend import fla_chunk_module, kernel_states
from ..recorder import CaptureError, KernelPatch, SequenceInfo, removed_on_error
from ..transfer import stack_layers, to_host
from .record import DeltaNetCapture
from .settings import DeltaNetSettings
from .tables import batch_deltanet_tables, deltanet_tables
from .assembly import AGGREGATES, PER_HEAD, RECALL_FIELDS, SEGMENT_SUMS, call_record
from .contribution import ContributionRequest, call_contributions, contribution_request


@dataclass
class KernelCall:
    """One gated-delta-rule kernel call as the wrapper saw it (shapes in the module docstring).
    start: sequence position of the call's first token; output: the kernel's (o, final_state), kept only
    when the recorder keeps calls (tests, probes)."""

    layer: int
    kind: str  # "chunk" or "recurrent"
    start: int
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    g: torch.Tensor
    beta: torch.Tensor
    initial_state: torch.Tensor | None
    use_qk_l2norm: bool
    output: tuple | None = None
    observed: bool = False
    v_new: torch.Tensor | None = None  # corrected values [B, T, Hv, V], kept only for the needle contribution


def _snapshot_locals(positions: tuple[int, ...], call: KernelCall, seq_len: int) -> list[int]:
    """Requested positions -> indices inside this call: non-negative = absolute positions, negative = from the
    end of a prefill (chunk) call. Positions outside the call are skipped."""
    local = set()
    for p in positions:
        absolute = p if p >= 0 else (call.start + seq_len + p if call.kind == "chunk" else -1)
        if absolute >= 0 and 0 <= absolute - call.start < seq_len:
            local.add(absolute - call.start)
    return sorted(local)


class DeltaNetRecorder:
    """Wraps the kernels, computes per-call statistics on the kernel's device, and holds them until collect."""

    kind = "deltanet"

    def __init__(self, settings: DeltaNetSettings, keep_calls: bool = False):
        self.settings = settings
        self.arguments = None  # the adapter's KernelArguments, set by attach
        self.decay = "per_head"
        self.keep_calls = keep_calls  # keep every KernelCall with its inputs and output (memory heavy)
        self.calls: list[KernelCall] = []
        self.current_layer: int | None = None
        self.recall_pairs: torch.Tensor | None = None
        self.contribution: ContributionRequest | None = None  # spans and query rows of the needle contribution
        self._called = False
        self._awaiting_states: KernelCall | None = None  # a chunk call whose stats wait for fla's chunk states
        self._next_position: dict[int, int] = {}
        self._records: dict[int, list[dict]] = {}
        self._contributions: dict[int, list[dict]] = {}
        self.row_lengths: list[int] | None = None  # real tokens per batch row of the next prefill (right-padded)

    def attach(self, model: torch.nn.Module, adapter) -> list:
        """Patch the kernel globals of the modeling file of every linear-attention block class and hook every block;
        returns the patches and hooks (capture's finally removes them)."""
        site = adapter.linear_attention
        modules = adapter.layers_of_kind(model, LINEAR_ATTENTION)
        if not modules:
            raise CaptureError(f"{adapter.name}: no linear-attention layer (layer kind {LINEAR_ATTENTION!r}); "
                               "capture without deltanet=True")
        self.arguments, self.decay = site.arguments, site.decay
        modeling_files = {type(m).__module__: sys.modules[type(m).__module__] for m in modules.values()}
        signatures = {(file, name): kernel_signature(adapter.name, file, name, site.arguments.required())
                      for file in modeling_files.values() for name, _ in site.kernels()}  # refuses before any patch
        handles = []
        with removed_on_error(handles):
            for (file, name), signature in signatures.items():
                kind = dict(site.kernels())[name]
                handles.append(KernelPatch(file, name, lambda original, kind=kind, signature=signature:
                                           self.wrap(original, kind, signature)))
            fla_chunk = fla_chunk_module() if self.settings.deltanet_path != "torch" and self.decay == "per_head" else None
            if fla_chunk is not None:
                handles.append(KernelPatch(fla_chunk, fla_states.FLA_FWD_H_NAME, self.wrap_chunk_states))
            for index, module in modules.items():
                handles.append(module.register_forward_pre_hook(self.enter_layer(index)))
                handles.append(module.register_forward_hook(self.leave_layer))
        return handles

    def begin_sequence(self, sequence: SequenceInfo) -> None:
        """Measure state recall of the prompt's planted needles (spans named needle*) and the needle contribution."""
        self.row_lengths = None
        self.set_recall_pairs(needle_recall_pairs(sequence.spans) or None)
        self.contribution = contribution_request(sequence.spans, sequence.num_tokens)

    def batchable(self, sequence: SequenceInfo) -> bool:
        """A right-padded row is exact for every per-token statistic (the recurrence is causal), but recall pairs
        are one set per call and negative snapshot positions count from the padded end: such prompts run alone."""
        return (not needle_recall_pairs(sequence.spans) and all(p >= 0 for p in self.settings.state_snapshots)
                and contribution_request(sequence.spans, sequence.num_tokens) is None)  # contributions: one prompt

    def begin_batch(self, sequences: list[SequenceInfo]) -> None:
        """Right-padded rows: per-sequence summaries (segments) cover each row's first `num_tokens` tokens only;
        per-token rows past them are padding, which the table builders never read (sequence.rows)."""
        if not all(self.batchable(s) for s in sequences):
            raise ValueError("a batch row has recall pairs or the settings ask for snapshots from the end: "
                             "trace such prompts one at a time")
        self.set_recall_pairs(None)
        self.contribution = None
        self.row_lengths = [s.num_tokens for s in sequences]

    def tables(self, record: DeltaNetCapture, sequence: SequenceInfo) -> dict:
        return deltanet_tables(sequence.seq_id, record, sequence.rows)

    def batch_tables(self, record: DeltaNetCapture, sequences: list[SequenceInfo]) -> dict:
        """The tables of every row of a batch at once (the per-token table by one gather per column)."""
        return batch_deltanet_tables([(s.seq_id, s.rows) for s in sequences], record)

    # --- observation -------------------------------------------------------------------------------
    def set_recall_pairs(self, pairs) -> None:
        """(key_pos, value_pos) token pairs [P, 2] for the following prefill calls (None = no recall)."""
        self.recall_pairs = None if pairs is None else torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)

    def enter_layer(self, layer: int):
        def hook(module, args):
            self.current_layer, self._called = layer, False

        return hook

    def leave_layer(self, module, args, output) -> None:
        layer, self.current_layer = self.current_layer, None
        if not self._called:
            raise RuntimeError(
                f"DeltaNet layer {layer} ran without calling a patched gated-delta-rule kernel global: its forward "
                "no longer looks the kernel up by module name, so the state cannot be observed"
            )

    def wrap(self, original, kind: str, signature: inspect.Signature):
        """The wrapper that replaces kernel global `original`. signature: what calling it finally runs
        (adapters.upstream.kernel_signature), by which its arguments are read whatever wraps the function."""

        def kernel(*args, **kwargs):
            if self.current_layer is None:
                return original(*args, **kwargs)
            arguments = signature.bind(*args, **kwargs).arguments
            call = self._read_call(self.current_layer, kind, arguments)
            self._called = True
            path = self.path_for(call)
            if path == "torch":
                with torch.no_grad():
                    self._observe(call, path)
                result = original(*args, **kwargs)
            else:  # the fla recursion wrapper (wrap_chunk_states) observes the kernel's own chunk states
                if call.initial_state is not None:
                    call.initial_state = call.initial_state.clone()  # the cache overwrites it after the kernel
                self._awaiting_states = call
                try:
                    result = original(*args, **kwargs)
                finally:
                    self._awaiting_states = None
                if not call.observed:  # the model's kernel did not run fla's recursion: run it here
                    with torch.no_grad():
                        self._observe(call, "fla-recompute")
            if call.v_new is not None:
                with torch.no_grad():
                    self._contribute(call, result[0])
            if self.keep_calls:
                call.output = tuple(None if x is None else x.detach().clone() for x in result)
                self.calls.append(call)
            return result

        kernel.__wrapped__ = original
        return kernel

    def wrap_chunk_states(self, original):
        """Wrapper of fla's chunk recursion (`FLA_CHUNK_MODULE.chunk_gated_delta_rule_fwd_h`): when a DeltaNet
        kernel call awaits its states, computes its statistics from the h and v_new the model's own kernel just
        produced (no second recursion) and returns the result untouched. h: [B, N, Hv, K, V] chunk-start states
        in the kernel's dtype (bf16 in a bf16 model), v_new [B, T, Hv, V]; k: the kernel's (normalised) keys."""
        signature = inspect.signature(original)

        def fwd_h(*args, **kwargs):
            result = original(*args, **kwargs)
            call = self._awaiting_states
            if call is not None:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()  # state_v_first, chunk_size, cu_seqlens as the recursion saw them
                states = kernel_states(call.value, bound.arguments, result)
                if states is not None:
                    self._awaiting_states = None
                    with torch.no_grad():
                        self._observe(call, "fla", states)
            return result

        fwd_h.__wrapped__ = original
        return fwd_h

    def _read_call(self, layer: int, kind: str, arguments: dict) -> KernelCall:
        names = self.arguments
        initial_state = arguments.get(names.initial_state)
        start = 0 if initial_state is None else self._next_position.get(layer, 0)
        self._next_position[layer] = start + arguments[names.value].shape[1]
        copy = (lambda x: x.detach().clone()) if self.keep_calls else (lambda x: x.detach())
        return KernelCall(
            layer=layer, kind=kind, start=start,
            query=copy(arguments[names.query]), key=copy(arguments[names.key]), value=copy(arguments[names.value]),
            g=copy(arguments[names.g]), beta=copy(arguments[names.beta]),
            initial_state=None if initial_state is None else copy(initial_state),
            use_qk_l2norm=bool(arguments.get(names.qk_l2norm, False)),
        )

    # --- statistics ---------------------------------------------------------------------------------
    def path_for(self, call: KernelCall) -> str:
        return state_path(self.settings.deltanet_path, self.decay, call.kind, call.value.device)

    def _recall_pairs_for(self, call: KernelCall, seq_len: int) -> torch.Tensor | None:
        pairs = self.recall_pairs
        if pairs is None or call.kind != "chunk" or call.start != 0 or pairs.numel() == 0:
            return None
        return pairs if int(pairs.max()) < seq_len else None

    def _wants_contribution(self, call: KernelCall) -> bool:
        return self.contribution is not None and call.kind == "chunk" and call.start == 0

    def _contribute(self, call: KernelCall, output: torch.Tensor) -> None:
        """Needle contribution of a sequence-starting prefill call, from its corrected values and the kernel's own
        output o [B, T, Hv, V] (capture/deltanet/contribution.py); v_new is dropped afterwards."""
        v_new, call.v_new = call.v_new, None
        parts = call_contributions(call, self.contribution, v_new, output.detach())
        if parts is not None:
            self._contributions.setdefault(call.layer, []).append(parts)

    def _observe(self, call: KernelCall, path: str, states=None) -> None:
        """One record per call (capture/deltanet/assembly.py): per-row aggregates, per-head rows, segment sums,
        recall, snapshots."""
        call.observed = True
        T = call.g.shape[1]
        pairs = self._recall_pairs_for(call, T)
        snaps = _snapshot_locals(self.settings.state_snapshots, call, T)
        stats, call.v_new = call_state_stats(
            call.query, call.key, call.value, call.g, call.beta, call.initial_state, decay=self.decay, path=path,
            pairs=pairs, snaps=snaps, use_qk_l2norm=call.use_qk_l2norm, want_v_new=self._wants_contribution(call),
            states=states)
        lengths = self.row_lengths if call.kind == "chunk" and call.start == 0 else None
        record = call_record(stats, call.g, call.beta, call.start, path, self.settings, lengths, self.recall_pairs,
                             pairs is not None, snaps, (call.key.shape[-1], call.value.shape[-1]))
        self._records.setdefault(call.layer, []).append(record)

    # --- collection --------------------------------------------------------------------------------
    def collect(self) -> DeltaNetCapture | None:
        """Everything recorded since the last collect, moved to the CPU with one
        synchronisation for all fields (none per layer), then cleared. None when nothing was recorded."""
        if not self._records:
            return None
        layers = sorted(self._records)
        first = self._records[layers[0]]
        shapes = {tuple(r["rows"] for r in self._records[layer]) for layer in layers}
        if len(shapes) != 1:
            raise RuntimeError(f"DeltaNet layers saw different forward calls (tokens per call): {shapes}")
        pair_sets = {None if "recall_pairs" not in r else tuple(map(tuple, r["recall_pairs"].tolist())) for r in first}
        if len(pair_sets) != 1:
            raise RuntimeError("recall pairs changed between forward calls of one collect; collect after each sequence")
        offsets = torch.tensor([0] + [r["rows"] for r in first]).cumsum(0)[:-1].tolist()

        def rows(name: str) -> torch.Tensor:  # CPU row indices of every call, shifted to the concatenation
            return torch.cat([r[name] + offset for r, offset in zip(first, offsets)])

        def stacked(name: str, dim: int = 0) -> torch.Tensor:  # [L, ...] on the device: cat calls, stack layers
            return stack_layers([[r[name] for r in self._records[layer]] for layer in layers], dim)

        has_recall = "recall_pairs" in first[0]
        names = [*AGGREGATES, *(f"head_{n}" for n in PER_HEAD), *(f"segment_{n}" for n in SEGMENT_SUMS),
                 "snapshot_states"]
        fields = {name: stacked(name) for name in names}
        if has_recall:
            fields.update({name: stacked(name, 1) for name in RECALL_FIELDS})
        host = to_host(fields)
        eff_rank, top_sv = state_spectrum(host.pop("snapshot_states"))  # [L, Q, H, K, V] -> [L, Q, H] each
        paths = sorted({r["path"] for r in first})
        capture = DeltaNetCapture(
            layers=layers,
            positions=torch.cat([r["positions"] for r in first]),
            **{name: host[name] for name in AGGREGATES},
            head_rows=rows("head_rows"),
            **{f"head_{name}": host[f"head_{name}"] for name in PER_HEAD},
            segments=rows("segments"),
            segment_tokens=torch.cat([r["segment_tokens"] for r in first]),
            **{f"segment_{name}": host[f"segment_{name}"] for name in SEGMENT_SUMS},
            recall_pairs=first[0]["recall_pairs"] if has_recall else None,
            **{name: host.get(name) for name in RECALL_FIELDS},
            snapshot_rows=rows("snapshot_rows"),
            snapshot_eff_rank=eff_rank,
            snapshot_top_sv=top_sv,
            path="+".join(paths),
            **self._collect_contributions(layers),
        )
        self._records.clear()
        return capture

    def _collect_contributions(self, layers: list[int]) -> dict:
        """The DeltaNetCapture contribution_* fields ({} without contributions), cleared. Rows R: per analysed call,
        batch row b and query row q (b*Q + q within a call)."""
        found, self._contributions = self._contributions, {}
        if not found:
            return {}
        if sorted(found) != layers:
            raise RuntimeError(f"needle contribution for DeltaNet layers {sorted(found)} of {layers}")
        first = found[layers[0]]
        spans = first[0]["spans"]
        if any(part["spans"] != spans for parts in found.values() for part in parts):
            raise RuntimeError("needle contribution spans changed between forward calls of one collect")

        def stacked(name: str, rows_dim: int) -> torch.Tensor:  # [L, ..., R, H]: batch and query rows flattened
            per_layer = [torch.cat([p[name].flatten(rows_dim, rows_dim + 1) for p in found[layer]], rows_dim)
                         for layer in layers]
            return torch.stack(per_layer).float()

        fields = {"contribution_norm_ratio": stacked("norm_ratio", 1), "contribution_projection": stacked("projection", 1)}
        for name in ("rest_norm_ratio", "rest_projection", "output_norm"):
            fields[f"contribution_{name}"] = stacked(name, 0)
        host = to_host(fields)
        positions = torch.cat([p["positions"].repeat(p["output_norm"].shape[0]) for p in first])
        return {"contribution_spans": list(spans), "contribution_positions": positions, **host}


def deltanet_layers(model: torch.nn.Module, adapter) -> dict[int, torch.nn.Module]:
    """Decoder-layer index -> linear-attention block, for every layer whose kind is linear attention."""
    return adapter.layers_of_kind(model, LINEAR_ATTENTION)


def needle_recall_pairs(spans) -> list[tuple[int, int]]:
    """Planted (key_pos, value_pos) pairs of a prompt: for every token span whose name starts with "needle" and
    covers at least one token, its last token as both key and value position (spans: workbench.inputs.spans.TokenSpan)."""
    return [(s.end_token - 1, s.end_token - 1) for s in spans
            if s.name.startswith("needle") and s.end_token > s.start_token]

