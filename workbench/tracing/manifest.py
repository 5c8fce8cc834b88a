"""The run manifest (`runs/<run_id>.json`: the facts of how a run was traced) and the one check that a run may be
resumed.

`run_manifest` builds the run facts every writer of a run commits: the local engine, the Ray engine's actors and
every probe (through `probe_run.write_probe_run`). `check_resume` is the only resume check: the writer
(`TraceWriter(resume=True)`), the CLI before it loads a model, the local engine and the Ray engine all call it, so
a run is resumed under the same rules whichever engine continues it.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..adapters.facts import model_facts
from ..capture import CaptureSettings
from ..inputs.prompts import Prompt
from ..loading import LoadedModel
from ..trace import SCHEMA_VERSION
from ..trace.folder import RUNS
from ..trace.writer import COMPLETE

PACKAGES = ("workbench", "torch", "transformers", "pyarrow", "tokenizers", "safetensors")


class RunNotResumable(ValueError):
    """--resume names a run that does not exist, has no committed part, or is already complete."""


def package_versions() -> dict[str, str | None]:
    """Python's version and each of PACKAGES' installed version (None where it is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_manifest(loaded: LoadedModel, settings: CaptureSettings, prompt_records: list[dict], started: datetime,
                 **extra) -> dict:
    """The run manifest every writer of a run commits (see README: trace folder layout); `extra` keys go last."""
    model, adapter = loaded.model, loaded.adapter
    return {
        "schema_version": SCHEMA_VERSION,
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "model": loaded.describe(),
        "family": adapter.name,
        **model_facts(adapter, model, mtp_layers=1 if "mtp" in settings else 0),  # what pages read (adapters/facts.py)
        "capture": settings.to_dict(),
        "tokenizer": _tokenizer_facts(loaded.tokenizer),
        "prompts": prompt_records,
        "num_tokens": sum(record["num_tokens"] for record in prompt_records),
        "packages": package_versions(),
        **extra,
    }


def named(name: str | None, note: str | None) -> dict:
    """The manifest's `name` and `note` keys, for those given (checked: trace/runs.check_name)."""
    from ..trace.runs import check_name

    return {k: v for k, v in (("name", check_name(name)), ("note", check_name(note, "note"))) if v is not None}


def _tokenizer_facts(tokenizer) -> dict:
    return {
        "name_or_path": getattr(tokenizer, "name_or_path", None),
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
    }


def check_resume(root: Path, run_id: str, manifest: dict | None, settings: CaptureSettings | None = None, *,
                 max_tokens: int | None = None, model: dict | None = None,
                 prompts: list[Prompt] | None = None) -> set[str]:
    """The committed prompt ids of run `run_id` of trace folder `root` (`manifest`: its manifest, None where it has
    none), after checking it can be continued. Raises RunNotResumable when the run has no committed part or is
    complete, and ValueError when it was traced another way than asked now.

    The run's state is always checked. With `settings` (an engine about to run prompts) the capture settings and
    `max_tokens` must equal the run's too; with `model` (`LoadedModel.describe()`, where a model is loaded) its
    config hash; with `prompts`, every committed prompt id must be among them (the same prompts file). The writer
    and the CLI, which know no run facts, check the state only."""
    if manifest is None:
        runs = sorted(p.stem for p in (root / RUNS).glob("*.json"))
        raise RunNotResumable(f"no run {run_id!r} with a committed part in {root} (runs: {', '.join(runs) or 'none'}); "
                              "a run that died before its first part kept nothing: start it again without --resume")
    if manifest.get("status") == COMPLETE:
        raise RunNotResumable(f"run {run_id} in {root} is complete: nothing to resume")
    committed = {p["id"] for p in manifest["prompts"]}
    if settings is None:
        return committed
    if CaptureSettings.from_dict(manifest["capture"]) != settings:
        raise ValueError(f"run {manifest['run_id']} was traced with capture settings {manifest['capture']}; resume it "
                         "with the same capture options")
    if model is not None and manifest["model"].get("config_hash") != model.get("config_hash"):
        raise ValueError(f"run {manifest['run_id']} was traced with model {manifest['model'].get('source')} "
                         f"(config hash {manifest['model'].get('config_hash')}); resume it with the same --model")
    if manifest.get("max_tokens") != max_tokens:
        raise ValueError(f"run {manifest['run_id']} was traced with max_tokens {manifest.get('max_tokens')}; resume "
                         "it with the same --max-tokens")
    unknown = committed - {p.id for p in prompts} if prompts is not None else set()
    if unknown:
        raise ValueError(f"run {manifest['run_id']} holds prompts not in the given prompts ({sorted(unknown)[:3]}...): "
                         "resume it with the same prompts file")
    return committed
