"""Where `--model nano` loads from: the trained checkpoint shipped beside this file (see its README.md).

It loads through the same path as any local checkpoint (config.json, sharded safetensors with an index,
tokenizer.json); nothing is generated or downloaded.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).parent / "checkpoint"


def nano_checkpoint() -> Path:
    """Folder holding the shipped nano checkpoint; a clear error when an install lost its files."""
    from ..loading import ModelNotAvailable

    missing = [name for name in ("config.json", "model.safetensors.index.json", "tokenizer.json")
               if not (SHIPPED / name).is_file()]
    if missing:
        raise ModelNotAvailable(f"the shipped nano checkpoint at {SHIPPED} lacks {', '.join(missing)}: reinstall "
                                f"the package, or train one with `python -m workbench.nano.train --out {SHIPPED}`")
    return SHIPPED
