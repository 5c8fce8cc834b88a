"""Trace prompts end to end: tokenize, forward under `capture`, write one run to a trace folder."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .capture import CaptureSettings, SequenceInfo, capture
from .loading import LoadedModel
from .prompts import Prompt
from .spans import encode, prompt_token_spans
from .trace import SCHEMA_VERSION, TraceWriter
from .trace.attention_tables import spans_table
from .trace.tables import tokens_table

PACKAGES = ("workbench", "torch", "transformers", "pyarrow", "tokenizers", "safetensors")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_manifest(loaded: LoadedModel, settings: CaptureSettings, prompt_records: list[dict], started: datetime,
                 **extra) -> dict:
    """The run manifest every writer of a run commits (see README: trace folder layout)."""
    model, adapter = loaded.model, loaded.adapter
    routers = adapter.routers(model)
    return {
        "schema_version": SCHEMA_VERSION,
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "model": loaded.describe(),
        "family": adapter.name,
        "layer_kinds": adapter.layer_kinds(model.config),
        "moe_layers": sorted(routers),
        "num_experts": next((int(r.num_experts) for r in routers.values() if hasattr(r, "num_experts")), None),
        "router_scoring": adapter.router.scoring if adapter.router is not None else None,
        "capture": settings.to_dict(),
        "tokenizer": _tokenizer_facts(loaded.tokenizer),
        "prompts": prompt_records,
        "num_tokens": sum(record["num_tokens"] for record in prompt_records),
        "packages": package_versions(),
        **extra,
    }


@dataclass
class RunSummary:
    run_id: str
    manifest_path: Path
    num_sequences: int
    num_tokens: int


def _tokenizer_facts(tokenizer) -> dict:
    return {
        "name_or_path": getattr(tokenizer, "name_or_path", None),
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
    }


@torch.inference_mode()
def trace_prompts(
    loaded: LoadedModel,
    prompts: list[Prompt],
    out: str | Path,
    settings: CaptureSettings | None = None,
    max_tokens: int | None = None,
    progress: bool = True,
) -> RunSummary:
    """Run every prompt (one sequence per forward, no padding) and append one run to `out`.

    Nothing reaches `out` until every prompt has run: an error leaves earlier runs untouched.
    """
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be an integer >= 1 (or None), got {max_tokens!r}")  # [:-n] would cut the end
    settings = settings or CaptureSettings()
    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    num_tokens = 0
    started = datetime.now(timezone.utc)
    prompt_records = []
    with TraceWriter(out) as writer, capture(model, settings, loaded.adapter) as run:
        for prompt in tqdm(prompts, desc="tracing", unit="prompt", disable=not progress):
            token_ids = encode(tokenizer, prompt.text)
            if max_tokens is not None:
                token_ids = token_ids[:max_tokens]
            if not token_ids:
                raise ValueError(f"prompt {prompt.id!r} tokenizes to no tokens")
            spans = prompt_token_spans(tokenizer, prompt.text, prompt.extra.get("spans", []), len(token_ids))
            if spans:
                writer.add("spans", spans_table(prompt.id, spans))
            sequence = SequenceInfo(prompt.id, len(token_ids), spans)
            run.begin_sequence(sequence)
            model(input_ids=torch.tensor([token_ids], device=device), use_cache=False)
            tokens = tokenizer.convert_ids_to_tokens(token_ids)
            writer.add("tokens", tokens_table(prompt.id, token_ids, tokens, prompt.label))
            for table, data in run.tables(sequence).items():
                writer.add(table, data)
            num_tokens += len(token_ids)
            prompt_records.append({"id": prompt.id, "label": prompt.label, "num_tokens": len(token_ids),
                                   "text": prompt.text, **prompt.extra})
        manifest = run_manifest(loaded, settings, prompt_records, started)
        path = writer.commit(manifest)
        return RunSummary(writer.run_id, path, len(prompts), num_tokens)
