"""Where `--model nano` loads from: the shipped trained checkpoint beside this file, or, when none is
shipped, a seeded random-init tiny Qwen3-Next written once to a cache folder (same loading path)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

SHIPPED = Path(__file__).parent / "checkpoint"
RANDOM_SEED = 0


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "workbench"


def nano_checkpoint() -> Path:
    """Folder holding the nano checkpoint (config.json, safetensors, tokenizer)."""
    if (SHIPPED / "config.json").is_file():
        return SHIPPED
    folder = _cache_root() / f"nano-random-seed{RANDOM_SEED}"
    if not (folder / "config.json").is_file():
        from ..toy import build_model, byte_tokenizer, qwen3_next_config, write_checkpoint

        tokenizer = byte_tokenizer()
        model = build_model(qwen3_next_config(num_layers=8, vocab_size=len(tokenizer)), seed=RANDOM_SEED)
        # write beside, then rename: an interrupted write never leaves a config.json without weights
        partial = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            write_checkpoint(partial, model, tokenizer)
            shutil.rmtree(folder, ignore_errors=True)  # leftovers of a write before this one
            try:
                os.replace(partial, folder)
            except OSError:  # another process renamed its complete copy into place first
                if not (folder / "config.json").is_file():
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return folder
