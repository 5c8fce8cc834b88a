"""Trace prompts from Python: `wb.trace(model, prompts, out, deltanet=True, ...)` runs `workbench trace`'s pipeline
(`tracing.trace_prompts`) and returns the new run, opened for questions.

Loads the model only when given a name or folder (torch is imported here, never by `import workbench`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..inputs.prompts import Prompt, PromptFileError, prompt_from_record, prompt_from_text, read_prompts
from .run import Run


def as_prompts(prompts) -> list[Prompt]:
    """A JSONL prompts file (str or Path), or a list of texts, of prompt-file objects ({id, text, label?, spans?})
    or of Prompts. Texts get ids text-0, text-1, ...; objects are checked as a prompts file's lines are."""
    if isinstance(prompts, Path) or (isinstance(prompts, str) and prompts.endswith(".jsonl")):
        return read_prompts(prompts)
    if isinstance(prompts, str):
        raise PromptFileError(f"prompts must be a .jsonl file or a list of texts, got the string {prompts[:40]!r}; "
                              "wrap one text in a list")
    if not isinstance(prompts, Iterable):
        raise PromptFileError(f"prompts must be a .jsonl file or a list, got {type(prompts).__name__}")
    result = []
    for index, item in enumerate(prompts):
        if isinstance(item, Prompt):
            result.append(item)
        elif isinstance(item, str):
            result.append(prompt_from_text(item, f"text-{index}"))
        else:
            result.append(prompt_from_record(item, f"prompts[{index}]"))
    ids = [p.id for p in result]
    if not result or len(set(ids)) != len(ids):
        raise PromptFileError("prompts must be a non-empty list with unique ids" + (f", got ids {ids}" if ids else ""))
    return result


def trace(model, prompts, out: str | Path, *, dtype: str = "auto", device: str | None = None,
          device_map: str | None = None, max_tokens: int | None = None, batch_tokens: int | None = None,
          progress: bool = True, **capture) -> Run:
    """Trace `prompts` through `model` into the trace folder `out` (created, or appended to) and return the new Run.

    model: "nano", a checkpoint folder, an HF id in the local cache, or a `workbench.loading.LoadedModel` (to trace
    several times without loading again). prompts: see `as_prompts`. capture: the `CaptureSettings` keywords, the
    same names as `workbench trace`'s flags (`deltanet=True`, `attention_stride=64`, `mtp=True`, ...); routing is
    on unless `routing=False`. dtype, device, device_map, max_tokens, batch_tokens: as the CLI's options.
    """
    from ..capture import CaptureSettings
    from ..loading import LoadedModel, load_model
    from ..tracing import trace_prompts
    from .trace_folder import Trace

    settings = CaptureSettings(**capture)
    settings.check_environment(device)
    prompt_list = as_prompts(prompts)
    loaded = model if isinstance(model, LoadedModel) else load_model(str(model), dtype=dtype, device=device,
                                                                     device_map=device_map)
    summary = trace_prompts(loaded, prompt_list, out, settings, max_tokens=max_tokens, progress=progress,
                            batch_tokens=batch_tokens)
    return Trace(out).run(summary.run_id)
