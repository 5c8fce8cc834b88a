"""Self-speculative decoding with the checkpoint's MTP head (`--speculative mtp --draft-tokens N`), batch 1.

A round, with x_n the last committed token (not yet fed to the trunk) and h_{n-1} the trunk's final-normed hidden
state that predicted it:
  1. draft: the MTP head's row for position n reads (h_{n-1}, x_n) and drafts d_1; each further draft row reads the
     previous draft row's MTP output (after the head's norm) and the previous draft, at the next position
     (mtp.head.mtp_rows; the head is recomputed over the whole sequence each time: no MTP cache, so drafting costs
     grow with the sequence);
  2. verify: the trunk runs [x_n, d_1 .. d_N] in one forward on a copy of its cache;
  3. accept: greedy, the longest prefix of drafts equal to the trunk's argmax; the trunk's own token after it is
     committed too (so every round commits at least one token). Sampling, the standard rejection rule (Leviathan et
     al. 2023; Chen et al. 2023): d_i is kept with probability min(1, p(d_i) / q(d_i)); at the first rejection a
     token is drawn from normalise(max(0, p - q)) and the round ends; after N kept drafts one more is drawn from p.
     p and q are the trunk's and the head's distributions after temperature and top-p. The emitted tokens are then
     distributed exactly as the trunk's (tests check the rule's marginal equals p).
  4. the trunk's cache: the verified copy where every draft was kept, else the accepted tokens [x_n, d_1 .. d_k] are
     run again on the cache from before the round (a DeltaNet state cannot be cut back to a shorter prefix).
Greedy output is token-identical to plain greedy decoding (tests/generation/test_speculative.py).

Captures: the drafts table is recorded live, one row per drafted token, with the trunk's routing of the drafted
token from the verifying forward and the MTP layer's routing of its drafting row. The per-token tables of the
sequence come from one forward over prompt + generated tokens after decoding (which equals what decoding computes:
tests/generation/test_generate.py); what the capture saw during the rounds is dropped.
"""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa
import torch

from ..adapters.upstream import cache_keyword, output_cache
from ..capture.routing.recorder import RoutingRecorder
from ..capture.recorder import CaptureError, remove_all
from ..trace.schema import table_schema
from ..trace.tables import seq_column
from .decode import Generation, eos_ids
from .settings import GenerationSettings


def processed_probs(logits: torch.Tensor, settings: GenerationSettings) -> torch.Tensor:
    """The distribution sampling draws from: softmax(logits / T), cut to the top-p nucleus and renormalised. [.., V]"""
    probs = torch.softmax(logits.float() / settings.temperature, dim=-1)
    if settings.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < settings.top_p  # the nucleus: mass before a token < top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """normalise(max(0, p - q)): what a rejected draft is replaced by (p where the two agree everywhere)."""
    rest = (p - q).clamp(min=0)
    total = rest.sum(-1, keepdim=True)
    return torch.where(total > 0, rest / total.clamp(min=torch.finfo(p.dtype).tiny), p)


def accept_probability(p: torch.Tensor, q: torch.Tensor, token: int) -> float:
    """min(1, p(token) / q(token)) for a token drawn from q."""
    return float(torch.clamp(p[token] / q[token].clamp(min=torch.finfo(q.dtype).tiny), max=1.0))


class _Hidden:
    """A forward hook on the decoder's final norm keeping its last output [1, T, H] (the trunk's final-normed
    hidden states, what the MTP head reads)."""

    def __init__(self, model):
        self.value = None
        self.handle = model.get_decoder().norm.register_forward_hook(self._keep)

    def _keep(self, module, args, output):
        self.value = output.detach()


@torch.no_grad()
def speculative_generate(model, tokenizer, prompt_ids: torch.Tensor, settings: GenerationSettings, run, seq_id: str,
                         keep_logits: bool = False) -> tuple[Generation, dict[str, pa.Table]]:
    """Generate after `prompt_ids` [1, T] with MTP drafts; returns the generation and {"drafts": table}. `run` is
    the open capture: the per-token tables are left in it from one forward over prompt + generated tokens."""
    from ..mtp import NoMTPWeights, load_mtp_head
    from ..mtp.head import mtp_rows

    folder = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
    try:
        head = load_mtp_head(model, folder)
    except (NoMTPWeights, FileNotFoundError, ValueError) as error:
        raise CaptureError(f"--speculative mtp needs the checkpoint's mtp.* tensors: {error}") from None
    generator = torch.Generator(device=prompt_ids.device).manual_seed(settings.seed)
    cache_key = cache_keyword(model.forward)
    mtp_routing, handles = RoutingRecorder(), []
    if run.adapter.router is not None:
        handles += mtp_routing.attach_layer(head.layers[0], model.get_decoder().config.num_hidden_layers, run.adapter)
    hidden = _Hidden(model)
    handles.append(hidden.handle)
    eos = eos_ids(model)
    try:
        out = model(input_ids=prompt_ids, use_cache=True)
        cache, trunk_hidden = output_cache(out), hidden.value  # h_0 .. h_{T-1}
        first, logprob, logits_row = _choose(out.logits[0, -1], settings, generator)
        tokens, logprobs, kept_logits = [first], [logprob], [logits_row]
        rows: list[dict] = []
        run.collect()
        round_index = 0
        while len(tokens) < settings.max_new_tokens and not _stopped(tokens, eos, tokenizer, settings):
            budget = min(settings.draft_tokens, settings.max_new_tokens - len(tokens))
            sequence = torch.cat([prompt_ids[0], torch.tensor(tokens, device=prompt_ids.device)])
            drafts, q_rows, mtp_ids = _draft(model, head, mtp_rows, mtp_routing, sequence, trunk_hidden, budget,
                                             settings, generator)
            verify = torch.cat([sequence[-1:], torch.tensor(drafts, device=sequence.device)])[None]  # [1, N+1]
            trial = copy.deepcopy(cache)
            out = model(input_ids=verify, use_cache=True, **{cache_key: trial})
            verified_hidden = hidden.value
            trunk_routing = run.collect().get("routing")
            committed, accepted = _accept(out.logits[0], drafts, q_rows, settings, generator)
            n = len(sequence)
            for i, draft in enumerate(drafts):
                p_trunk = torch.softmax(out.logits[0, i].float(), -1)[draft]
                rows.append({"round": round_index, "draft": i, "position": n + i, "draft_token_id": draft,
                             "trunk_token_id": int(out.logits[0, i].argmax()),
                             "accepted": i < accepted, "p_draft": float(q_rows[i][draft]), "p_trunk": float(p_trunk),
                             "mtp_topk_ids": mtp_ids[i], "trunk_topk_ids": _trunk_ids(trunk_routing, i + 1)})
            if accepted == len(drafts):
                cache = trial
            else:  # run the accepted tokens again on the cache from before the round
                model(input_ids=verify[:, :accepted + 1], use_cache=True, **{cache_key: cache})
                run.collect()
            trunk_hidden = torch.cat([trunk_hidden, verified_hidden[:, :accepted + 1]], dim=1)
            for token, logprob, logits_row in committed[:settings.max_new_tokens - len(tokens)]:
                tokens.append(token)
                logprobs.append(logprob)
                kept_logits.append(logits_row)
            round_index += 1
        full = torch.cat([prompt_ids[0], torch.tensor(tokens, device=prompt_ids.device)])[None]
        run.collect()
        model(input_ids=full, use_cache=False)  # the per-token tables: one forward over prompt + generated tokens
    finally:
        remove_all(handles)
    ids = np.asarray(tokens, dtype=np.int64)
    reason = "eos" if int(ids[-1]) in eos else ("stop" if _stopped(tokens, set(), tokenizer, settings) else "length")
    generation = Generation(ids, np.asarray(logprobs, dtype=np.float32), tokenizer.decode(tokens), reason,
                            torch.stack(kept_logits).cpu() if keep_logits else None)
    return generation, {"drafts": drafts_table(seq_id, rows)}


def _choose(logits: torch.Tensor, settings: GenerationSettings, generator) -> tuple[int, float, torch.Tensor]:
    """The trunk's token from one row of logits [V] (argmax, or a draw from the processed distribution), its log
    probability under the raw logits, and the raw logits."""
    if settings.greedy:
        token = int(logits.argmax())
    else:
        token = int(torch.multinomial(processed_probs(logits, settings), 1, generator=generator))
    return token, float(torch.log_softmax(logits.float(), -1)[token]), logits.float()


def _draft(model, head, mtp_rows, mtp_routing, sequence: torch.Tensor, trunk_hidden: torch.Tensor, budget: int,
           settings: GenerationSettings, generator) -> tuple[list[int], list[torch.Tensor], list[list[int]]]:
    """Up to `budget` drafts after `sequence` [n] (trunk hidden h_0 .. h_{n-2} known, [1, n-1, H]): the tokens, the
    head's distribution q of each (processed like the trunk's when sampling; one-hot of the argmax when greedy), and
    the MTP layer's routed experts of each drafting row."""
    next_ids = sequence[1:][None]  # row t reads x_{t+1}
    rows_hidden = trunk_hidden[:, : next_ids.shape[1]]
    drafts, q_rows, routed = [], [], []
    for step in range(budget):
        mtp_routing.collect()
        logits, mtp_out = mtp_rows(model, head, next_ids, rows_hidden)  # the last row drafts the next token
        last = logits[0, -1].float()
        if settings.greedy:
            token = int(last.argmax())
            q = torch.softmax(last, -1)
        else:
            q = processed_probs(last, settings)
            token = int(torch.multinomial(q, 1, generator=generator))
        record = mtp_routing.collect()
        routed.append([] if record is None else record.topk_ids[0, -1].tolist())
        drafts.append(token)
        q_rows.append(q)
        next_ids = torch.cat([next_ids, torch.tensor([[token]], device=next_ids.device)], dim=1)
        rows_hidden = torch.cat([rows_hidden, mtp_out[:, -1:]], dim=1)
    return drafts, q_rows, routed


def _accept(logits: torch.Tensor, drafts: list[int], q_rows: list[torch.Tensor], settings: GenerationSettings,
            generator) -> tuple[list[tuple[int, float, torch.Tensor]], int]:
    """The tokens a round commits (token, ln p under the raw logits, raw logits) and how many drafts were kept.
    logits: [N+1, V] the trunk's at [x_n, d_1 .. d_N]; row i predicts the token after d_i."""
    committed = []
    for i, draft in enumerate(drafts):
        row = logits[i].float()
        if settings.greedy:
            if int(row.argmax()) != draft:
                committed.append(_choose(row, settings, generator))
                return committed, i
        else:
            p = processed_probs(row, settings)
            if float(torch.rand((), generator=generator, device=row.device)) >= accept_probability(p, q_rows[i], draft):
                token = int(torch.multinomial(residual(p, q_rows[i]), 1, generator=generator))
                committed.append((token, float(torch.log_softmax(row, -1)[token]), row))
                return committed, i
        committed.append((draft, float(torch.log_softmax(row, -1)[draft]), row))
    committed.append(_choose(logits[len(drafts)].float(), settings, generator))
    return committed, len(drafts)


def _trunk_ids(record, index: int) -> list[list[int]]:
    """Per trunk MoE layer, the routed experts of token `index` of the verifying forward ([] without routing)."""
    return [] if record is None else record.topk_ids[:, index].tolist()


def _stopped(tokens: list[int], eos: set[int], tokenizer, settings: GenerationSettings) -> bool:
    if tokens and tokens[-1] in eos:
        return True
    return bool(settings.stop) and any(s in tokenizer.decode(tokens) for s in settings.stop)


def drafts_table(seq_id: str, rows: list[dict]) -> pa.Table:
    schema = table_schema("drafts")
    columns = {name: [row[name] for row in rows] for name in schema.names if name != "seq_id"}
    return pa.table({"seq_id": seq_column(seq_id, len(rows)), **columns}, schema=schema)
