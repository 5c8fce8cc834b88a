"""Plain generation through the model's own `generate()` and cache: prefill, then one forward per new token.

Run inside `capture(...)`, every forward is observed: the prompt's prefill call and each decode call, whose rows
continue the sequence's positions. After `generate()` returns, the last generated token is fed once more through
the returned cache (its logits are discarded), so every generated token has rows in every per-token table like the
prompt's tokens: the tables of a generation have the shape of one forward over prompt + generated tokens
(tests/generation/test_generate.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from ..adapters.upstream import cache_keyword, output_cache
from .settings import GenerationSettings


@dataclass
class Generation:
    """One prompt's generation. token_ids: [G] generated ids; logprobs: [G] ln p of each under the raw logits;
    logits: [G, V] the raw logits each was chosen from (kept for tests; None when not asked);
    stop_reason: "eos", "stop" (a stop string) or "length"."""

    token_ids: np.ndarray
    logprobs: np.ndarray
    text: str
    stop_reason: str
    logits: torch.Tensor | None = None


class StopOnStrings(StoppingCriteria):
    """Ends a batch-1 generation once the text decoded from the generated tokens contains a stop string."""

    def __init__(self, tokenizer, prompt_length: int, stop: tuple[str, ...]):
        self.tokenizer, self.prompt_length, self.stop = tokenizer, prompt_length, stop
        self.hit = False

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        text = self.tokenizer.decode(input_ids[0, self.prompt_length:].tolist())
        self.hit = any(s in text for s in self.stop)
        return torch.full((input_ids.shape[0],), self.hit, dtype=torch.bool, device=input_ids.device)


def eos_ids(model) -> set[int]:
    """The end-of-sequence ids generate() stops at (generation config, else model config)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    return set() if eos is None else {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def sampling_arguments(settings: GenerationSettings) -> dict:
    if settings.greedy:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": float(settings.temperature), "top_p": float(settings.top_p),
            "top_k": 0}


@torch.no_grad()
def generate(model, tokenizer, prompt_ids: torch.Tensor, settings: GenerationSettings, feed_last: bool = True,
             keep_logits: bool = False) -> Generation:
    """Generate after `prompt_ids` [1, T] with `model.generate` (greedy or seeded sampling), then feed the last new
    token once more through the cache when `feed_last`. Sampling draws from torch's global generator, seeded with
    `settings.seed` inside `fork_rng` (the caller's random state is left as it was)."""
    if prompt_ids.dim() != 2 or prompt_ids.shape[0] != 1:
        raise ValueError(f"generate runs one prompt at a time: input ids [1, T], got {tuple(prompt_ids.shape)}")
    length = prompt_ids.shape[1]
    stop = StopOnStrings(tokenizer, length, settings.stop) if settings.stop else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids(model)), 0)
    devices = [prompt_ids.device] if prompt_ids.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)
        out = model.generate(input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids),
                             max_new_tokens=settings.max_new_tokens, min_new_tokens=0, pad_token_id=pad,
                             stopping_criteria=StoppingCriteriaList([stop]) if stop else None,
                             output_logits=True, return_dict_in_generate=True, use_cache=True,
                             **sampling_arguments(settings))
    new = out.sequences[0, length:]
    logits = torch.stack([step[0] for step in out.logits]).float()  # [G, V] raw logits
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, new[:, None]).squeeze(-1)
    if feed_last:
        model(input_ids=new[-1:][None], use_cache=True, **{cache_keyword(model.forward): output_cache(out)})
    ids = new.cpu().numpy()
    reason = "eos" if int(ids[-1]) in eos_ids(model) else ("stop" if stop is not None and stop.hit else "length")
    return Generation(ids, logprobs.cpu().numpy(), tokenizer.decode(ids.tolist()), reason,
                      logits.cpu() if keep_logits else None)
