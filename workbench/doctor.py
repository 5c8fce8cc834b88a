"""`workbench doctor`: what this install is, which fast paths run here, and whether every capture site of every
supported family resolves on the installed transformers. The first thing to paste into a bug report.

A family is checked on its tiny random-init model (adapters/tiny.py, built in milliseconds): each capture kind the
family has is attached, one 12-token forward runs under it, its records are collected, and the logits must equal
the plain forward's bit for bit. A kind that is refused (adapters/upstream.py's one-line SiteError) or fails shows
its one line. The plain forward runs the kernels a capture runs: where fla is installed, tensors off CUDA take the
torch reference (capture/kernel_device.py), as a trace of a CPU model does. Nothing here downloads or writes outside a temporary folder.
"""

from __future__ import annotations

import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

# distribution name -> what it is for (the versions a bug report needs)
PACKAGES = {
    "torch": "tensors",
    "transformers": "the modeling code the captures observe",
    "flash-linear-attention": "fla: DeltaNet chunk states on CUDA",
    "triton": "the workbench's fused kernels on CUDA",
    "kernels": "transformers' hub-kernel wrappers",
    "pyarrow": "traces",
    "duckdb": "dashboard queries",
    "streamlit": "dashboard",
}
PROMPT_TOKENS = 12


@dataclass
class FamilyReport:
    """One family's check: capture kind -> None when it resolved and observed exactly, else its one-line reason;
    forward_error: why the plain forward of the tiny model fails on this install (None when it runs)."""

    family: str
    kinds: dict[str, str | None]
    forward_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.forward_error is None and all(reason is None for reason in self.kinds.values())


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def versions() -> list[tuple[str, str]]:
    """(name, version) for python, each package in PACKAGES ("not installed" when absent), CUDA and the devices."""
    rows = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    rows.append(("CUDA", torch.version.cuda or "none (a CPU build of torch)"))
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() \
        else []
    rows.append(("devices", ", ".join(devices) or "CPU only"))
    return rows


def fast_paths() -> list[tuple[str, bool, str]]:
    """(fast path, usable here, why or why not) for the optional paths the captures take on a GPU."""
    from .ops.state_norms.fla_backend import fla_for
    from .capture.saliency.expert_tap import tap_unavailable
    from .ops.triton_support import kernel_module

    rows = []
    cuda = torch.cuda.is_available()
    if cuda:
        fwd_h, reason = fla_for(torch.device("cuda"))
        rows.append(("fla chunk states (DeltaNet norms from the model's own states)", fwd_h is not None,
                     "calibrated on cuda" if fwd_h is not None else reason))
    else:
        rows.append(("fla chunk states (DeltaNet norms from the model's own states)", False, "needs a CUDA device"))
    for module, what in (("router_stats_kernel", "router summaries"), ("state_norm_kernel", "state norms")):
        loads = kernel_module(module) is not None
        usable = loads and cuda
        why = "runs on CUDA tensors" if usable else ("triton does not import" if not loads else
                                                      "CUDA only: the PyTorch ops run on the CPU")
        rows.append((f"Triton kernel: {what}", usable, why))
    from .adapters.tiny import build_family_model
    from .adapters import adapter_for_config

    model = build_family_model("qwen3_next")
    adapter = adapter_for_config(model.config)
    experts = next(iter(adapter.routers(model)))
    reason = tap_unavailable(model.get_submodule(f"{adapter.layers}.{experts}.{adapter.router.experts}"))
    rows.append(("grouped_mm experts tap (expert saliency without recomputing)", reason is None,
                 "the experts run grouped_mm" if reason is None else reason))
    return rows


def _kind_settings(adapter) -> dict[str, object]:
    """Capture kind -> the CaptureSettings that exercise it alone on a family (every option that adds a site), from
    each registered kind's `doctor`; kinds without one (mtp) and kinds the family has no site for are left out."""
    from .capture import CaptureSettings
    from .capture.kind import registered_kinds

    kinds = {}
    for name, kind in registered_kinds().items():
        settings = kind.doctor(adapter) if kind.doctor is not None else None
        if settings is not None:
            kinds[name] = CaptureSettings.of(settings)
    return kinds


def _observed_exactly(model, settings, ids: torch.Tensor, plain: torch.Tensor | None) -> str | None:
    """None when a capture under `settings` attaches, observes one forward, collects, and leaves the logits
    bit-identical to `plain` (the plain forward's; None when that failed); else the one-line reason. A refusal is
    raised on entering the capture, before any forward, so it is what shows even where the model cannot run."""
    from .capture import capture

    try:
        with torch.no_grad(), capture(model, settings) as run:
            logits = model(input_ids=ids, use_cache=False).logits
            run.collect()
    except Exception as error:  # noqa: BLE001 - every failure is the report, in one line
        return _one_line(error)
    if plain is None or not torch.equal(logits, plain):
        return "the logits under capture differ from the plain forward's"
    return None


def _mtp_reason(model, ids: torch.Tensor, plain: torch.Tensor) -> str | None:
    """The MTP kind, on the tiny model saved to a temporary checkpoint folder with a random-init mtp.* shard."""
    from .capture import CaptureSettings
    from .mtp import MTPHead, write_mtp_shard

    with tempfile.TemporaryDirectory() as folder:
        head = MTPHead(model)
        with torch.no_grad():
            for parameter in head.parameters():  # fused experts start as torch.empty
                parameter.normal_(std=0.02)
        from transformers.utils import logging

        logging.disable_progress_bar()
        try:
            model.save_pretrained(folder)
        finally:
            logging.enable_progress_bar()
        write_mtp_shard(folder, head.state_dict())
        previous = model.name_or_path
        model.name_or_path = str(Path(folder))
        try:
            return _observed_exactly(model, CaptureSettings(routing=False, mtp=True), ids, plain)
        finally:
            model.name_or_path = previous


def check_family(family: str, device: str = "cpu") -> FamilyReport:
    """Build `family`'s tiny model (a FAMILY_CONFIGS key) on `device` and check every capture kind it has."""
    from .adapters import adapter_for_config
    from .adapters.tiny import build_family_model
    from .capture.kernel_device import model_kernels_by_device
    from .capture.recorder import remove_all

    model = build_family_model(family).to(device)
    adapter = adapter_for_config(model.config)
    ids = torch.randint(0, 256, (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(0)).to(device)
    plain, forward_error = None, None
    dispatch = model_kernels_by_device(model, adapter)  # the kernels a capture runs (capture/kernel_device.py)
    try:
        with torch.no_grad():
            plain = model(input_ids=ids, use_cache=False).logits
    except Exception as error:  # noqa: BLE001 - the model itself does not run on this install: reported
        forward_error = _one_line(error)
    finally:
        remove_all(dispatch)
    kinds = {kind: _observed_exactly(model, settings, ids, plain) for kind, settings in _kind_settings(adapter).items()}
    if adapter.name == "qwen3_next":  # the family whose checkpoints carry an MTP head
        kinds["mtp"] = _mtp_reason(model, ids, plain)
    return FamilyReport(family, kinds, forward_error)


def families() -> list[str]:
    """One tiny config per registered family (a multimodal wrapper loads as its text model: the same sites)."""
    from .adapters.tiny import FAMILY_CONFIGS

    return [name for name in FAMILY_CONFIGS if not name.endswith("_wrapper")]


def default_device() -> str:
    """Where the families are checked unless told: the GPU where there is one (the paths a GPU user runs)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def report(family_names: list[str] | None = None, device: str | None = None) -> tuple[list[str], bool]:
    """The doctor's printout as lines, and whether every checked family's every site resolved on `device`."""
    from .adapters.upstream import tested_range, transformers_version

    lines = ["versions"]
    lines += [f"  {name:<24} {version}" for name, version in versions()]
    installed = transformers_version()
    lines.append(f"  transformers tested on   {tested_range()} (installed: {installed})")
    lines.append("fast paths")
    lines += [f"  {'yes' if usable else 'no ':<4} {name}: {why}" for name, usable, why in fast_paths()]
    device = device or default_device()
    lines.append(f"capture sites, per family (tiny random-init model on {device}, one forward, logits bit-identical)")
    all_ok = True
    for family in family_names or families():
        checked = check_family(family, device)
        all_ok &= checked.ok
        status = "ok  " if checked.ok else "FAIL"
        lines.append(f"  {status} {family}: " + ", ".join(
            kind if reason is None else f"{kind} FAILED" for kind, reason in checked.kinds.items()))
        if checked.forward_error is not None:
            lines.append(f"         the plain forward fails: {checked.forward_error}")
        lines += [f"         {kind}: {reason}" for kind, reason in checked.kinds.items() if reason is not None]
    return lines, all_ok
