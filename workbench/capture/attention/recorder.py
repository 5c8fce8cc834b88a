"""Attention-recall capture of the gated full-attention layers: what each head retrieves, without T x T memory.

Sites, in execution order inside each full-attention block (the adapter's AttentionSite, on the layers its
layer kinds call full attention), for one forward call with Tq new tokens and Tk keys (Tk = Tq without a cache):
  1. output-gate hook, where the family has one (Qwen3-Next, Qwen3.5: `q_proj`, output [B, Tq, Hq * 2D] laid out
     per head as [q(D) | gate(D)]; the adapter's gate_logits splits it): g = sigmoid(gate) in (0, 1) multiplies
     the head's attention output before o_proj (0 = head silenced).
     Recorded per token and head: gate_mean = mean_D g, gate_low_fraction = fraction of the D entries < 0.1.
  2. attention function (`function.py`, swapped in with model.set_attn_implementation): query
     [B, Hq, Tq, D] and key [B, Hkv, Tk, D] after q/k RMSNorm and (partial) rotary, as the model attends (MLA:
     keys expanded per head from the latent, D = nope + rope dims).
     Query row i is token Tk - Tq + i. Recorded for the selected rows (every `stride`-th token, the last
     token of the call, tokens of query spans): span masses, top-k keys, entropy, sink mass, mean distance
     (`ops.attention_stats`, blockwise over keys, fp32).
The model's attention output is the delegate's (sdpa or eager) unchanged; the previous implementation is
restored by a handle that the capture context removes in `finally`.
Assumes a pure causal mask. Right-padded batches (tracing/batching.py, `begin_batch`): row b's first n_b tokens are its
prompt and the padding after them is never a key of a real query (causal), so the statistics of row b are computed
on query[b, :, :n_b] and key[b, :, :n_b] with the row's own spans and query rows, exactly as for batch 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ...adapters import FULL_ATTENTION, Adapter
from ...adapters.upstream import site_error
from ...ops.attention_stats import AttentionStats, Span
from ..recorder import CallbackHandle, CaptureError, SequenceInfo, removed_on_error
from ..transfer import layers_and_calls, stack_layers, to_host
from .function import ACTIVE, DELEGATES, PREFIX, recall_name, rows_attention_stats, select_rows
from .record import AttentionCapture
from .tables import batch_attention_tables, batch_row

GATE_LOW = 0.1  # a gate entry below this counts as (nearly) closed


class AttentionCaptureError(CaptureError):
    """Attention capture cannot run on this model (no full-attention layer, unsupported implementation)."""


def full_attention_layers(model: torch.nn.Module, adapter: Adapter) -> dict[int, torch.nn.Module]:
    """Decoder-layer index -> full-attention block, for the layers the adapter's layer kinds call full attention.
    Raises AttentionCaptureError when there is none (attention stats would be empty)."""
    found = adapter.layers_of_kind(model, FULL_ATTENTION)
    if not found:
        kinds = sorted(set(adapter.layer_kinds(model.config)))
        raise AttentionCaptureError(
            f"{adapter.name}: attention capture needs a full-attention layer, but the layer kinds are {kinds}; "
            "capture without attention=True"
        )
    return found


def check_sites(adapter: Adapter, modules: dict[int, torch.nn.Module], delegate: str) -> None:
    """Before any swap: every attention block's modeling file looks its attention function up in transformers'
    interface (the global ALL_ATTENTION_FUNCTIONS; with eager, its own eager_attention_forward), and every output
    gate projection is as wide as [q | gate] per head. A SiteError (one line) otherwise."""
    for layer, module in modules.items():
        file = sys.modules[type(module).__module__]
        needed = ["ALL_ATTENTION_FUNCTIONS"] + (["eager_attention_forward"] if delegate == "eager" else [])
        missing = [name for name in needed if not hasattr(file, name)]
        if missing:
            raise site_error(adapter.name, f"{file.__name__}", f"the modeling file has no {', '.join(missing)}: its "
                             "attention does not go through transformers' attention interface")
        if adapter.attention.gate_path is None:
            continue
        proj = module.get_submodule(adapter.attention.gate_path)
        heads, head_dim = module.config.num_attention_heads, module.head_dim
        if getattr(proj, "out_features", None) != heads * 2 * head_dim:
            raise site_error(adapter.name, f"{adapter.layers}.{layer}.{adapter.attention.path}."
                             f"{adapter.attention.gate_path}", f"gives {getattr(proj, 'out_features', None)} features, "
                             f"not {heads} heads x [query | gate] of {head_dim} each")


@dataclass
class AttentionRecorder:
    """Swaps in the recording attention function and hooks the output gates (attach); holds per-layer device
    tensors until `collect()`."""

    kind = "attention"

    stride: int
    top_k: int
    block_size: int = 4096
    spans: list[Span] = field(default_factory=list)
    named_positions: list[int] = field(default_factory=list)
    _stats: dict[int, list[AttentionStats]] = field(default_factory=dict, init=False, repr=False)
    _gate: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=dict, init=False, repr=False)
    # right-padded batch: per row (spans, named positions, tokens); stats per layer, per row
    batch_rows: list[tuple[list[Span], list[int], int]] | None = field(default=None, init=False, repr=False)
    _row_stats: dict[int, list[list[AttentionStats]]] = field(default_factory=dict, init=False, repr=False)

    def attach(self, model: torch.nn.Module, adapter: Adapter) -> list:
        """Route every full-attention layer's attention call through the recording function and hook its output
        gate; the returned handles undo both (capture removes them newest first: the implementation swap first)."""
        modules = full_attention_layers(model, adapter)
        window = getattr(model.config, "sliding_window", None)
        if window and getattr(model.config, "use_sliding_window", True):
            raise AttentionCaptureError(
                f"{adapter.name}: attention stats assume full causal attention, but the config sets sliding_window="
                f"{window}; capture without attention=True")
        original = model.config._attn_implementation
        if original not in DELEGATES:
            active = str(original).startswith(PREFIX)
            nested = " (an attention capture is already active on this model)" if active else ""
            raise AttentionCaptureError(
                f"attention capture delegates to {' or '.join(DELEGATES)}, but the model runs {original!r}{nested}; "
                "call model.set_attn_implementation('sdpa') first"
            )
        check_sites(adapter, modules, original)
        handles = []
        with removed_on_error(handles):
            for layer, module in modules.items():
                ACTIVE[id(module)] = self.attention_callback(layer)
                handles.append(CallbackHandle(lambda key=id(module): ACTIVE.pop(key, None)))
                if adapter.attention.gate_path is not None:
                    proj = module.get_submodule(adapter.attention.gate_path)
                    hook = self.gate_hook(layer, module, adapter.attention.gate_logits)
                    handles.append(proj.register_forward_hook(hook))
            handles.append(CallbackHandle(lambda: _restore_implementation(model, original)))
            model.set_attn_implementation(recall_name(original))
            if model.config._attn_implementation != recall_name(original):
                raise AttentionCaptureError(
                    f"{type(model).__name__} did not accept attention implementation {recall_name(original)!r} "
                    f"(it runs {model.config._attn_implementation!r}): it does not use transformers' AttentionInterface"
                )
        return handles

    def begin_sequence(self, sequence: SequenceInfo) -> None:
        """Measure attention mass on the prompt's spans; analyse every token of a `query: true` span as a query."""
        self.batch_rows = None
        self.set_sequence([s.as_key_range() for s in sequence.spans],
                          [p for s in sequence.spans if s.query for p in range(s.start_token, s.end_token)])

    def begin_batch(self, sequences: list[SequenceInfo]) -> None:
        """Right-padded rows, each with its own spans, query rows and length (see the module docstring)."""
        self.batch_rows = [([s.as_key_range() for s in seq.spans],
                            sorted({p for s in seq.spans if s.query for p in range(s.start_token, s.end_token)}),
                            seq.num_tokens) for seq in sequences]

    def tables(self, record, sequence: SequenceInfo) -> dict:
        return self.batch_tables(record, [sequence])

    def batch_tables(self, record, sequences: list[SequenceInfo]) -> dict:
        """The tables of every row of a batch at once (alike rows stacked). record: one AttentionCapture per row
        after a right-padded batch (gates cut to the row's tokens), else one capture whose row 0 is the sequence."""
        rows = record if isinstance(record, list) else [batch_row(record, 0)]
        return batch_attention_tables([s.seq_id for s in sequences], [rows[s.row] for s in sequences])

    def set_sequence(self, spans: Sequence[Span] = (), query_positions: Sequence[int] = ()) -> None:
        """What the next forward calls analyse: spans (name, start token, end token) whose attention mass is
        measured, and positions analysed besides the stride rows and each call's last token."""
        self.spans = [(str(n), int(s), int(e)) for n, s, e in spans]
        self.named_positions = sorted({int(p) for p in query_positions})

    def attention_callback(self, layer: int):
        def record(module, query, key, scaling):
            if self.batch_rows is not None and query.shape[-2] == key.shape[-2]:  # right-padded prefill
                with torch.no_grad():
                    groups = []
                    for b0, b1 in row_groups(self.batch_rows):  # rows alike in spans, query rows and length: one call
                        spans, named, n = self.batch_rows[b0]
                        rows = select_rows(0, n, self.stride, named)
                        groups.append((b0, b1, rows_attention_stats(query[b0:b1, :, :n].detach(),
                                                                    key[b0:b1, :, :n].detach(), rows, scaling,
                                                                    spans, self.top_k, self.block_size)))
                self._row_stats.setdefault(layer, []).append(groups)
                return
            with torch.no_grad():
                first = key.shape[-2] - query.shape[-2]
                rows = select_rows(first, query.shape[-2], self.stride, self.named_positions)
                stats = rows_attention_stats(query.detach(), key.detach(), rows, scaling, self.spans,
                                             self.top_k, self.block_size)
            self._stats.setdefault(layer, []).append(stats)

        return record

    def gate_hook(self, layer: int, attention: torch.nn.Module, gate_logits):
        def hook(module, args, output):
            gate = torch.sigmoid(gate_logits(attention, output.detach()).float())  # [B, T, H, D]
            record = (gate.mean(-1), (gate < GATE_LOW).float().mean(-1))  # [B, T, H] each
            self._gate.setdefault(layer, []).append(record)

        return hook

    def collect(self) -> AttentionCapture | list[AttentionCapture] | None:
        """Everything recorded since the last collect, on the CPU (one synchronisation), then cleared. After a
        right-padded batch: one AttentionCapture per row (B = 1, gate tokens cut to the row's length)."""
        if self._row_stats:
            return self._collect_rows()
        return self._collect_calls()

    def _collect_calls(self) -> AttentionCapture | None:
        if not self._stats:
            return None
        layers, per_layer = layers_and_calls(self._stats, "full-attention")

        positions = torch.cat([s.query_positions.cpu() for s in per_layer[0]])
        names = list(per_layer[0][0].span_mass)
        fields = {
            name: stack_layers([[getattr(s, name) for s in calls_] for calls_ in per_layer], dim=1)
            for name in ("topk_pos", "topk_weight", "entropy", "sink_mass", "mean_distance")
        }
        for n in names:
            fields[f"span:{n}"] = stack_layers([[s.span_mass[n] for s in c] for c in per_layer], dim=1)
        if self._gate and all(layer in self._gate for layer in layers):
            fields["gate_mean"] = stack_layers([[g[0] for g in self._gate[layer]] for layer in layers], dim=1)
            fields["gate_low"] = stack_layers([[g[1] for g in self._gate[layer]] for layer in layers], dim=1)
        host = to_host(fields)
        capture = AttentionCapture(
            layers=layers,
            query_positions=positions,
            span_mass={n: host[f"span:{n}"] for n in names},
            topk_pos=host["topk_pos"],
            topk_weight=host["topk_weight"],
            entropy=host["entropy"],
            sink_mass=host["sink_mass"],
            mean_distance=host["mean_distance"],
            gate_mean=host.get("gate_mean"),
            gate_low_fraction=host.get("gate_low"),
        )
        self._stats.clear()
        self._gate.clear()
        return capture


    def _collect_rows(self) -> list[AttentionCapture]:
        """One copy to the host per group of alike rows (row_groups), then each row's capture cut from its group's."""
        layers = sorted(self._row_stats)
        if any(len(self._row_stats[layer]) != 1 for layer in layers):
            raise RuntimeError("a right-padded batch is one forward call: collect after each batch")
        captures = []
        gates = self._gate
        for g, (b0, b1, _) in enumerate(self._row_stats[layers[0]][0]):
            n = self.batch_rows[b0][2]
            self._stats = {layer: [self._row_stats[layer][0][g][2]] for layer in layers}
            self._gate = {layer: [(m[b0:b1, :n], low[b0:b1, :n]) for m, low in calls] for layer, calls in gates.items()}
            group = self._collect_calls()
            captures.extend(batch_row(group, i) for i in range(b1 - b0))
        self._gate = gates
        self._row_stats.clear()
        self._gate.clear()
        return captures


def row_groups(batch_rows: list[tuple]) -> list[tuple[int, int]]:
    """[b0, b1) runs of consecutive batch rows with the same (spans, named positions, length): each run is analysed
    by one call on query[b0:b1] (a batch of equal-length prompts without spans is one run)."""
    groups = []
    for b, row in enumerate(batch_rows):
        if groups and batch_rows[groups[-1][0]] == row:
            groups[-1][1] = b + 1
        else:
            groups.append([b, b + 1])
    return [tuple(g) for g in groups]


def _restore_implementation(model: torch.nn.Module, original: str) -> None:
    if model.config._attn_implementation != original:
        model.set_attn_implementation(original)
