"""Load a model and its tokenizer from an HF id, a local checkpoint folder, or the built-in name `nano`.

Nothing here waits on the network unless asked: HF ids resolve from the local cache only
(`allow_download=True` lifts that). The family is checked against the adapter registry from the config alone,
before any weight is read. A multimodal wrapper checkpoint (Qwen3.5: `text_config`, weights under
`model.language_model.`) loads as its text decoder only: the adapter picks the text config, and transformers maps
the weight names and skips the vision tower.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .adapters import Adapter, UnsupportedArchitecture, adapter_for_config, supported_model_types

NANO = "nano"
SHIPPED_NANO = Path(__file__).parent / "nano" / "checkpoint"  # the trained checkpoint shipped with the package
DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotAvailable(FileNotFoundError):
    """The model cannot be found locally (and downloading was not allowed)."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    adapter: Adapter
    source: str  # what the user asked for: "nano", a path or an HF id
    resolved: str  # where it was loaded from
    revision: str | None

    def describe(self) -> dict:
        """Model facts for the run manifest."""
        config = self.model.config
        return {
            "source": self.source,
            "resolved": self.resolved,
            "architecture": self.adapter.architecture,
            "revision": self.revision,
            "config_hash": config_hash(config),
            "config": json.loads(config.to_json_string(use_diff=False)),
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "device": str(next(self.model.parameters()).device),
            "num_parameters": sum(p.numel() for p in self.model.parameters()),
        }


def config_hash(config) -> str:
    """sha256 of the full config as sorted JSON: two runs with equal hashes ran the same architecture. Where the
    weights were loaded from (`_name_or_path`) is left out, so one checkpoint hashes alike in every checkout."""
    fields = json.loads(config.to_json_string(use_diff=False))
    fields.pop("_name_or_path", None)
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_local_path(spec: str) -> bool:
    """A local folder: exists, or is written as a path. `owner/name` that does not exist is an HF id."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or Path(spec).expanduser().exists()


def nano_checkpoint() -> Path:
    """Folder holding the shipped nano checkpoint (see its README.md); a clear error when an install lost its files."""
    missing = [name for name in ("config.json", "model.safetensors.index.json", "tokenizer.json")
               if not (SHIPPED_NANO / name).is_file()]
    if missing:
        raise ModelNotAvailable(f"the shipped nano checkpoint at {SHIPPED_NANO} lacks {', '.join(missing)}: reinstall "
                                f"the package, or train one from the repository's root with "
                                f"`python -m nano.train --out {SHIPPED_NANO}`")
    return SHIPPED_NANO


def check_model_type(raw_config: dict) -> None:
    """Refuse a config.json whose model_type no adapter serves (neither as a causal LM nor as a multimodal wrapper)."""
    model_type = raw_config.get("model_type")
    if model_type not in supported_model_types():
        architectures = ", ".join(raw_config.get("architectures") or [])
        named = f" ({architectures})" if architectures else ""
        raise UnsupportedArchitecture(
            f"model_type {model_type!r}{named} is not supported; supported model_types: "
            f"{', '.join(supported_model_types())}")


def resolve_dtype(name: str):
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype takes {', '.join(DTYPES)}, got {name!r}") from None


def check_load_options(dtype: str = "auto", device: str | None = None, device_map: str | None = None) -> None:
    """Every check on how to load that needs no model: the one place the CLI and `load_model` validate them."""
    if device is not None and device_map is not None:
        raise ValueError("give either --device or --device-map, not both")
    resolve_dtype(dtype)
    check_device(device)


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have, before anything is loaded."""
    if device is None:
        return
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; e.g. cpu, cuda, cuda:1") from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available to this torch")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) exist")


def load_model(
    spec: str,
    dtype: str = "auto",
    device: str | None = None,
    device_map: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    allow_download: bool = False,
) -> LoadedModel:
    """Load `spec` ("nano", a local folder, or an HF id) for observation (eval mode, no grad needed)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

    check_load_options(dtype, device, device_map)
    torch_dtype = resolve_dtype(dtype)
    if spec == NANO:
        location, local_only = str(nano_checkpoint()), True
    elif _is_local_path(spec):
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise ModelNotAvailable(f"model path {folder} does not exist")
        if not (folder / "config.json").is_file():
            raise ModelNotAvailable(f"model folder {folder} has no config.json")
        location, local_only = str(folder), True
    else:
        location, local_only = spec, not allow_download

    options = dict(revision=revision, trust_remote_code=trust_remote_code, local_files_only=local_only)
    try:
        raw, _ = PretrainedConfig.get_config_dict(location, **options)
        check_model_type(raw)  # one line listing the supported families, before transformers parses the config
        config = AutoConfig.from_pretrained(location, **options)
    except OSError as error:
        if local_only and spec != NANO and not _is_local_path(spec):
            raise ModelNotAvailable(
                f"model {spec!r} is not in the local Hugging Face cache "
                f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); download it first or pass a local "
                f"folder (sharded safetensors + index); --allow-download lets this command fetch it"
            ) from error
        raise ModelNotAvailable(f"cannot read a config from {location}: {error}") from error
    adapter = adapter_for_config(config)  # refuses unknown families before weights are read
    config = adapter.text_config(config)  # a multimodal wrapper: its text decoder only

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **options)
    except (OSError, ValueError) as error:
        raise ModelNotAvailable(f"cannot load a tokenizer from {location}: {error}") from error
    if len(tokenizer) <= 1:  # transformers builds an empty tokenizer when a folder has no tokenizer files
        raise ModelNotAvailable(
            f"cannot load a tokenizer from {location}: no tokenizer files found (tokenizer.json, vocab files)"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(
            location, config=config, dtype=torch_dtype, device_map=device_map, **options
        )
    except OSError as error:
        raise ModelNotAvailable(f"cannot load weights from {location}: {error}") from error
    if type(model).__name__ != adapter.architecture:  # the adapter's sites and kernel globals belong to that class
        raise UnsupportedArchitecture(
            f"{location} loads as {type(model).__name__}, but the {adapter.name} adapter describes "
            f"{adapter.architecture}; supported model_types: {', '.join(supported_model_types())}")
    if device is not None:
        model = model.to(device)
    model.eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        adapter=adapter,
        source=spec,
        resolved=location,
        revision=getattr(config, "_commit_hash", None) or revision,
    )
