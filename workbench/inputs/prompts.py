"""Prompt files: JSON Lines, one object per line with `id`, `text`, optional `label` and `spans` (see spans.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .spans import SpanError, parse_spans


class PromptFileError(ValueError):
    """A prompts file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    label: str | None = None
    extra: dict = field(default_factory=dict, compare=False)  # any other keys, kept for probes


def _parse_line(line: str, where: str) -> Prompt:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise PromptFileError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
    return prompt_from_record(record, where)


def prompt_from_record(record: dict, where: str = "prompt") -> Prompt:
    """One prompt from a prompts-file object ({id, text, label?, spans?, ...}), checked as a file's line is; `where`
    starts the error message (a file and line, or a list index)."""
    if not isinstance(record, dict):
        raise PromptFileError(f"{where}: expected a JSON object with 'id' and 'text', got {type(record).__name__}")
    for key in ("id", "text"):
        if key not in record:
            raise PromptFileError(f"{where}: missing required key {key!r} (keys: {sorted(record)})")
    if not isinstance(record["text"], str) or not record["text"]:
        raise PromptFileError(f"{where}: 'text' must be a non-empty string")
    if not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
        raise PromptFileError(f"{where}: 'id' must be a string or an integer")
    label = record.get("label")
    if label is not None and not isinstance(label, str):
        raise PromptFileError(f"{where}: 'label' must be a string when given")
    extra = {k: v for k, v in record.items() if k not in ("id", "text", "label")}
    if "spans" in extra:
        try:
            parse_spans(extra["spans"], record["text"])
        except SpanError as error:
            raise PromptFileError(f"{where} (prompt {record['id']!r}): {error}") from None
    return Prompt(id=str(record["id"]), text=record["text"], label=label, extra=extra)


def read_prompts(path: str | Path) -> list[Prompt]:
    """All prompts of a JSONL file; blank lines are skipped; ids must be unique."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompts file {path} does not exist")
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PromptFileError(f"prompts file {path} is not UTF-8 text (byte {error.start}: {error.reason})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        prompt = _parse_line(line, f"{path}, line {number}")
        if prompt.id in seen:
            raise PromptFileError(f"{path}, line {number}: duplicate id {prompt.id!r} (first on line {seen[prompt.id]})")
        seen[prompt.id] = number
        prompts.append(prompt)
    if not prompts:
        raise PromptFileError(f"prompts file {path} holds no prompts")
    return prompts


def prompt_from_text(text: str, prompt_id: str = "text-0") -> Prompt:
    if not text:
        raise PromptFileError("--text must not be empty")
    return Prompt(id=prompt_id, text=text)
