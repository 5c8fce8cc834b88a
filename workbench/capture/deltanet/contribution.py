"""DeltaNet needle contribution at capture: how much of a gated delta-rule layer's kernel output at the analysed
query rows was written by each named span (the DeltaNet analogue of attention's span mass).

The math and its fp64 reference live in `ops/span_contribution/`: o_t = sum_{j <= t} w_tj delta_j + initial-state
term, w_tj = q_t . (e^{c_t - c_j} o k_j), delta = the corrected values (fla's `v_new`). Here the recorder supplies
per kernel call:
    query rows   the tokens of `query: true` spans and the call's last token (absolute positions, call start 0);
    spans        every named span with at least one token (name, start_token, end_token);
    v_new        torch path: from the chunked recompute (`chunked_state_stats(return_chunk_states=True)`);
                 fla path: the corrected values the model's own fla recursion produced (kernel dtype);
    o            the kernel's own output for the call (so the parts and the rest add up to what the layer used).
Only prefill calls that start a sequence (no cached state before them) are analysed, like state recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...ops.span_contribution import span_contributions


@dataclass(frozen=True)
class ContributionRequest:
    """What to decompose in the next prefill: spans (name, start, end exclusive) and query rows [Q] (sorted)."""

    spans: tuple
    query_positions: tuple


def contribution_request(spans, seq_len: int | None = None) -> ContributionRequest | None:
    """From a prompt's token spans (workbench.inputs.spans.TokenSpan): every non-empty span, query rows = the tokens of its
    `query` spans plus the last token (when seq_len is known). None when there is no span to decompose over."""
    named = tuple((s.name, int(s.start_token), int(s.end_token)) for s in spans if s.end_token > s.start_token)
    if not named:
        return None
    rows = {p for s in spans if getattr(s, "query", False) for p in range(s.start_token, s.end_token)}
    if seq_len:
        rows.add(seq_len - 1)
    return ContributionRequest(named, tuple(sorted(rows)))


def call_contributions(call, request: ContributionRequest, v_new: torch.Tensor, output: torch.Tensor) -> dict | None:
    """Span shares of one kernel call's output, on the call's device.

    call: the recorder's KernelCall (query, key [B, T, Hk, K]; g [B, T, Hv]; start 0); v_new, output: [B, T, Hv, V]
    the corrected values and the kernel's output o. Returns {"positions": [Q] int64, "spans": [names],
    "norm_ratio", "projection": [S, B, Q, Hv] fp32, "rest_norm_ratio", "rest_projection", "output_norm": [B, Q, Hv]},
    or None when no requested row or span lies inside the call.
    """
    T = call.value.shape[1]
    rows = [p for p in request.query_positions if p < T]
    spans = [(n, s, min(e, T)) for n, s, e in request.spans if s < T]
    if not rows or not spans:
        return None
    result = span_contributions(call.query, call.key, call.g, rows, spans, v_new=v_new, o=output,
                                initial_state=call.initial_state, use_qk_l2norm=call.use_qk_l2norm)
    names = [n for n, _, _ in spans]
    return {
        "positions": result.query_positions.cpu(),
        "spans": names,
        "norm_ratio": torch.stack([result.norm_ratio[n] for n in names]),
        "projection": torch.stack([result.projection[n] for n in names]),
        "rest_norm_ratio": result.rest_norm_ratio,
        "rest_projection": result.rest_projection,
        "output_norm": result.o.norm(dim=-1),
    }
