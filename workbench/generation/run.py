"""`generate_prompts`: generate after every prompt under capture and append one run to a trace folder.

Per prompt (one at a time): tokenise, generate (decode.py, or speculative.py with `--speculative mtp`) inside the
capture, collect once, and build the tables of prompt + generated tokens as one sequence (every per-token table gets
`phase`: 'prefill' before the prompt's length, 'decode' from it). The tokens table holds the generated tokens after
the prompt's, with their log-probabilities; the manifest's prompt record holds the generated text, the new-token
count and why it stopped. Parts are committed every `part_tokens` tokens and `resume` continues a stopped run, as
`trace_prompts` does (tracing/manifest.check_resume, plus the generation options).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..capture import CaptureSettings, SequenceInfo, capture
from ..inputs.prompts import Prompt
from ..loading import LoadedModel
from ..trace import TraceWriter
from ..trace.folder import manifest_path
from ..trace.schema import PHASE
from ..trace.tables import spans_table, tokens_table
from ..trace.writer import read_manifest
from ..tracing import PART_TOKENS, RunSummary, TraceInterrupted, check_resume, encode_prompt, run_manifest
from ..tracing import stop_on_sigint, token_strings
from ..tracing.batching import check_positions, max_positions
from ..tracing.manifest import named
from .decode import Generation, generate
from .settings import GenerationSettings


def with_phase(table: pa.Table, prompt_length: int) -> pa.Table:
    """`table` plus its `phase` column: 'decode' where position >= prompt_length, else 'prefill' (tables without a
    position column are returned as they are)."""
    if "position" not in table.column_names:
        return table
    decode = pc.greater_equal(table.column("position"), pa.scalar(prompt_length, pa.int32()))
    return table.append_column(PHASE.name, pc.if_else(decode, pa.scalar("decode"), pa.scalar("prefill")))


def check_generation_capture(settings: CaptureSettings) -> None:
    """Capture kinds that cannot follow a generation refuse here, before anything loads."""
    if "mtp" in settings:
        raise ValueError("--mtp scores the MTP head's teacher-forced drafts of a prompt; to decode with the MTP head "
                         "use --speculative mtp (its drafts go to the `drafts` table)")


def generate_traced(run, model, tokenizer, encoded, settings: GenerationSettings, vocab: pa.Array,
                    keep_logits: bool = False) -> tuple[Generation, dict[str, pa.Table]]:
    """Generate after one encoded prompt inside an open capture `run` and build its tables (tokens, spans, every
    kind's, drafts), each per-token table with `phase`."""
    device = next(model.parameters()).device
    ids = torch.as_tensor(encoded.token_ids, dtype=torch.long, device=device)[None]
    run.collect()  # nothing from an earlier prompt leaks into this one
    run.begin_sequence(encoded.sequence())
    extra: dict[str, pa.Table] = {}
    if settings.speculative == "mtp":
        from .speculative import speculative_generate

        generation, extra = speculative_generate(model, tokenizer, ids, settings, run, encoded.prompt.id,
                                                 keep_logits=keep_logits)
    else:
        generation = generate(model, tokenizer, ids, settings, keep_logits=keep_logits)
    length, total = ids.shape[1], ids.shape[1] + len(generation.token_ids)
    tables = run.build_tables(run.collect(), [SequenceInfo(encoded.prompt.id, total, encoded.spans)])
    logprobs = np.concatenate([np.full(length, np.nan), generation.logprobs]).astype(np.float32)
    tables["tokens"] = tokens_table([encoded.prompt.id], [np.concatenate([encoded.token_ids, generation.token_ids])],
                                    [encoded.prompt.label], vocab, logprobs=logprobs)
    if encoded.spans:
        tables["spans"] = spans_table(encoded.prompt.id, encoded.spans)
    tables.update(extra)
    return generation, {name: with_phase(table, length) for name, table in tables.items()}


@torch.inference_mode()
def generate_prompts(loaded: LoadedModel, prompts: list[Prompt], out: str | Path, settings: CaptureSettings | None,
                     generation: GenerationSettings, max_tokens: int | None = None, part_tokens: int = PART_TOKENS,
                     resume: str | None = None, progress: bool = True, name: str | None = None,
                     note: str | None = None) -> RunSummary:
    """Generate after every prompt and append one run to `out` (see the module docstring)."""
    settings = settings if settings is not None else CaptureSettings()
    check_generation_capture(settings)
    model, tokenizer = loaded.model, loaded.tokenizer
    started = datetime.now(timezone.utc)
    with TraceWriter(out, run_id=resume, resume=resume is not None) as writer, \
            capture(model, settings, loaded.adapter) as run, stop_on_sigint() as stop:
        skipped: set[str] = set()
        if resume is not None:
            manifest = read_manifest(writer.root, writer.run_id)
            skipped = check_resume(writer.root, writer.run_id, manifest, settings, max_tokens=max_tokens,
                                   model=loaded.describe(), prompts=prompts)
            if "generation" not in manifest or GenerationSettings.from_dict(manifest["generation"]) != generation:
                raise ValueError(f"run {writer.run_id} was not generated with these options "
                                 f"({manifest.get('generation', 'a trace, not a generation')}); resume it with the same "
                                 "generation options")
        base = run_manifest(loaded, settings, [], started, max_tokens=max_tokens, generation=generation.to_dict(),
                            **named(name, note))
        vocab = token_strings(tokenizer)
        todo = [(i, p) for i, p in enumerate(prompts) if p.id not in skipped]
        limit = max_positions(model.config)  # the prompt and every generated token must fit the position limit
        limit = None if limit is None else limit - generation.max_new_tokens
        if limit is not None and limit < 1:
            raise ValueError(f"--max-new-tokens {generation.max_new_tokens} leaves no room for a prompt within the "
                             f"model's max_position_embeddings ({limit + generation.max_new_tokens})")
        check_positions(tokenizer, prompts, max_tokens, limit, frozenset(skipped))
        bar = _progress(len(todo), progress)
        pending, done = [], 0
        for index, prompt in todo:
            encoded = encode_prompt(tokenizer, index, prompt, max_tokens, limit)
            result, tables = generate_traced(run, model, tokenizer, encoded, generation, vocab)
            for name, table in tables.items():
                writer.add(name, table)
            pending.append({**encoded.record(), "num_tokens": len(encoded.token_ids) + len(result.token_ids),
                            "prompt_tokens": len(encoded.token_ids), "new_tokens": len(result.token_ids),
                            "generated_text": result.text, "stop_reason": result.stop_reason})
            done += 1
            bar.update(1)
            if sum(r["num_tokens"] for r in pending) >= part_tokens or stop.is_set():
                writer.commit_part(pending, base)
                pending = []
            if stop.is_set():
                break
        if pending:
            writer.commit_part(pending, base)
        bar.close()
        manifest = read_manifest(writer.root, writer.run_id)
        if stop.is_set() and done < len(todo):
            writer.close()
            summary = None if manifest is None else _summary(writer, manifest, done, skipped)
            raise TraceInterrupted(summary, len(todo) - done)
        if manifest is None:
            raise RuntimeError(f"run {writer.run_id} has no committed part")
        path = writer.finish(order=[p.id for p in prompts])
        return _summary(writer, read_manifest(writer.root, writer.run_id), done, skipped, path)


def _summary(writer, manifest: dict, done: int, skipped: set[str], path=None) -> RunSummary:
    return RunSummary(writer.run_id, path or manifest_path(writer.root, writer.run_id), len(manifest["prompts"]),
                      sum(p["num_tokens"] for p in manifest["prompts"]), done, sorted(skipped))


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="generating", unit="prompt", disable=not enabled)
