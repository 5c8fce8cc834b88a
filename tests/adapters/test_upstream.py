"""Capture sites are resolved on the installed transformers and refused in one line before any forward when they
moved: a renamed kernel argument, a missing kernel global, a wrapper hiding the names, a router returning another
tuple, a modeling file that no longer goes through the attention interface. Each refusal names the family, the
site, the installed transformers and the tested range; the model is left as it was and nothing is written."""

import functools
import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from support.model_state import model_state
from typer.testing import CliRunner

from workbench.adapters import adapter_for_config
from workbench.adapters.upstream import (TESTED_TRANSFORMERS, SiteError, callable_parameters, kernel_signature,
                                         torch_reference, transformers_version)
from workbench.capture import CaptureSettings, capture
from workbench.capture.deltanet.recorder import deltanet_layers
from workbench.cli import app

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
CHUNK = "torch_chunk_gated_delta_rule"
RECURRENT = "torch_recurrent_gated_delta_rule"


def _ids(model, length=12):
    return torch.randint(0, model.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(5))


def _modeling_file(model):
    adapter = adapter_for_config(model.config)
    return sys.modules[type(next(iter(deltanet_layers(model, adapter).values()))).__module__]


def _assert_one_line_refusal(message, site):
    assert "\n" not in message
    assert message.startswith("qwen3_next: ") and site in message
    assert f"transformers {transformers_version()} installed" in message
    assert ">=5.17,<5.26" in message


def _refused(model, monkeypatch, settings, site, match, break_site):
    """`break_site()` moves one capture site (through monkeypatch). The capture must raise a one-line SiteError
    without entering, leaving the model's hooks and kernel globals as the break left them; once the break is undone,
    the model is as before (state and logits bit for bit)."""
    ids = _ids(model)
    with torch.no_grad():
        before_logits = model(input_ids=ids).logits
    before = model_state(model)
    break_site()
    broken = model_state(model)
    with pytest.raises(SiteError, match=match) as refused:
        with capture(model, settings):
            pytest.fail("capture was entered")
    _assert_one_line_refusal(str(refused.value), site)
    assert model_state(model) == broken
    monkeypatch.undo()
    assert model_state(model) == before
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before_logits)
    return str(refused.value)


def test_the_compatibility_run_covers_the_oldest_and_a_newest_release_of_the_range():
    """make test-compat's releases: the first is the declared lower bound itself, every one lies in the range."""
    from packaging.specifiers import SpecifierSet

    line = next(l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("COMPAT_RELEASES ?="))
    releases = line.split("?=")[1].split()
    declared = SpecifierSet(",".join(TESTED_TRANSFORMERS))
    assert len(releases) >= 2 and all(release in declared for release in releases)
    assert TESTED_TRANSFORMERS[0] == f">={releases[0].removesuffix('.0')}"


def test_pyproject_declares_the_tested_range():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = [d for d in dependencies if re.match(r"transformers\b", d)]
    assert declared == ["transformers" + ",".join(TESTED_TRANSFORMERS)]


def test_the_installed_kernel_globals_resolve_to_the_torch_signature(tiny_next):
    """Whatever wraps the kernel global on this install (the hub fallback's functools.wraps, the kernels package's
    Func module), the resolved signature is the torch reference's, and the reference is found under it."""
    file = _modeling_file(tiny_next)
    for name in (CHUNK, RECURRENT):
        kernel = getattr(file, name)
        reference = torch_reference(kernel, file)
        assert reference is not None and reference.__module__ == file.__name__ and reference.__name__ == name
        resolved = callable_parameters(kernel)
        assert list(resolved.parameters)[:5] == ["query", "key", "value", "g", "beta"]
        assert resolved == callable_parameters(reference)


def test_the_kernels_package_func_module_is_seen_through():
    """The kernels package turns a function into an nn.Module whose forward(*args, **kwargs) calls it (a closure):
    the resolver reads the function's own names, and the plain function defined in the file is its reference."""

    def reference(query, key, value, g, beta, initial_state=None):
        return query

    @functools.wraps(reference)
    def fallback(*args, **kwargs):
        return reference(*args, **kwargs)

    def as_module(func):
        class Func(torch.nn.Module):
            def forward(self, *args, **kwargs):
                return func(*args, **kwargs)

        return Func()

    wrapped = as_module(fallback)
    assert str(inspect.signature(wrapped)) == "(*args, **kwargs)"  # what the recorder used to bind by
    assert list(callable_parameters(wrapped).parameters) == ["query", "key", "value", "g", "beta", "initial_state"]
    file = sys.modules[__name__]
    assert torch_reference(wrapped, file) is reference
    assert callable_parameters(as_module(lambda *args, **kwargs: None)) is None


def test_a_renamed_kernel_argument_is_refused_before_the_forward(tiny_next, monkeypatch):
    file = _modeling_file(tiny_next)

    def renamed(query, key, v, g, beta, initial_state=None, output_final_state=False, use_qk_l2norm_in_kernel=False):
        raise AssertionError("the kernel ran")

    message = _refused(tiny_next, monkeypatch, CaptureSettings(deltanet=True), f"{file.__name__}.{CHUNK}",
                       "takes no argument 'value'", lambda: monkeypatch.setattr(file, CHUNK, renamed))
    assert "(it takes query, key, v, g, beta" in message


def test_a_missing_kernel_global_is_refused(tiny_next, monkeypatch):
    file = _modeling_file(tiny_next)
    _refused(tiny_next, monkeypatch, CaptureSettings(deltanet=True), f"{file.__name__}.{RECURRENT}",
             "the kernel global is missing", lambda: monkeypatch.delattr(file, RECURRENT))


def test_a_wrapper_hiding_the_argument_names_is_refused(tiny_next, monkeypatch):
    file = _modeling_file(tiny_next)
    original = getattr(file, CHUNK)
    hidden = lambda *args, **kwargs: original(*args, **kwargs)  # noqa: E731 - a wrapper without functools.wraps
    _refused(tiny_next, monkeypatch, CaptureSettings(deltanet=True), f"{file.__name__}.{CHUNK}",
             "hides the argument names", lambda: monkeypatch.setattr(file, CHUNK, hidden))


def test_a_router_returning_another_tuple_is_refused(tiny_next, monkeypatch):
    adapter = adapter_for_config(tiny_next.config)
    router_class = type(tiny_next.get_submodule(f"{adapter.layers}.0.{adapter.router.path}"))
    forward = router_class.forward
    two = lambda self, hidden: forward(self, hidden)[1:]  # noqa: E731
    _refused(tiny_next, monkeypatch, CaptureSettings(routing=True), router_class.__name__,
             r"returns tuple of 2, not \(logits", lambda: monkeypatch.setattr(router_class, "forward", two))


def test_a_router_returning_float_ids_is_refused(tiny_next, monkeypatch):
    adapter = adapter_for_config(tiny_next.config)
    router_class = type(tiny_next.get_submodule(f"{adapter.layers}.0.{adapter.router.path}"))
    forward = router_class.forward

    def float_ids(self, hidden):
        logits, weights, ids = forward(self, hidden)
        return logits, weights, ids.float()

    _refused(tiny_next, monkeypatch, CaptureSettings(routing=True), router_class.__name__, "not integer expert ids",
             lambda: monkeypatch.setattr(router_class, "forward", float_ids))


def test_an_attention_block_outside_the_attention_interface_is_refused(tiny_next, monkeypatch):
    adapter = adapter_for_config(tiny_next.config)
    layer = next(i for i, kind in enumerate(tiny_next.config.layer_types) if kind == "full_attention")
    file = sys.modules[type(tiny_next.get_submodule(f"{adapter.layers}.{layer}.{adapter.attention.path}")).__module__]
    _refused(tiny_next, monkeypatch, CaptureSettings(routing=False, attention=True), file.__name__,
             "has no ALL_ATTENTION_FUNCTIONS", lambda: monkeypatch.delattr(file, "ALL_ATTENTION_FUNCTIONS"))


def test_a_later_recorder_refusing_removes_the_earlier_ones(tiny_next, monkeypatch):
    """Routing attaches its hooks first; the DeltaNet refusal that follows must take them off again."""
    file = _modeling_file(tiny_next)
    _refused(tiny_next, monkeypatch, CaptureSettings(routing=True, deltanet=True, attention=True), CHUNK, "missing",
             lambda: monkeypatch.delattr(file, CHUNK))


def test_the_cli_refuses_in_one_line_and_writes_nothing(tmp_path, next_checkpoint, monkeypatch):
    import transformers.models.qwen3_next.modeling_qwen3_next as file

    def renamed(query, key, v, g, beta, initial_state=None, output_final_state=False, use_qk_l2norm_in_kernel=False):
        raise AssertionError("the kernel ran")

    monkeypatch.setattr(file, CHUNK, renamed)
    out = tmp_path / "trace"
    result = CliRunner().invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "hello there", "--out",
                                      str(out), "--deltanet"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("Loading weights")]
    assert len(lines) == 1 and lines[0].startswith("error: qwen3_next: ") and "takes no argument 'value'" in lines[0]
    assert not out.exists()


def test_kernel_signature_names_what_it_found():
    def kernel(query, key, value, g, beta, initial_state=None):
        return None

    module = type(sys)("transformers.models.fake.modeling_fake")
    module.kernel = kernel
    assert list(kernel_signature("fake", module, "kernel", ("query", "beta")).parameters)[:2] == ["query", "key"]
    with pytest.raises(SiteError, match=r"^fake: transformers\.models\.fake\.modeling_fake\.kernel: takes no "
                                        r"argument 'decay', 'scale' \(it takes query, key, value, g, beta"):
        kernel_signature("fake", module, "kernel", ("query", "decay", "scale"))


def test_a_cpu_model_traces_with_fla_installed(tiny_next, monkeypatch):
    """Issue 22 item 6: where fla is installed, transformers < 5.25 sends CPU tensors to fla's Triton kernels, which
    fail there. Simulated: fla 'installed' and the kernel globals replaced by an fla-like dispatcher that raises on
    CPU tensors (functools.wraps of the torch reference, as the hub fallback builds it). While a capture is open,
    CPU tensors take the torch reference (capture/kernel_device.py): a routing-only and a DeltaNet capture both
    run, the logits equal the plain model's and the states the plain capture's; on exit the globals are restored."""
    import workbench.capture.kernel_device as kernel_device

    ids = _ids(tiny_next, 40)
    settings = CaptureSettings(routing=False, deltanet=True, deltanet_path="torch")
    with torch.no_grad(), capture(tiny_next, settings) as run:
        plain_logits = tiny_next(input_ids=ids, use_cache=False).logits
        plain = run.collect("deltanet")
    file = _modeling_file(tiny_next)
    for name in (CHUNK, RECURRENT):
        reference = torch_reference(getattr(file, name), file)

        def fla_like(*args, **kwargs):
            raise RuntimeError("fla's Triton kernel got CPU tensors")

        monkeypatch.setattr(file, name, functools.wraps(reference)(fla_like))
    monkeypatch.setattr(kernel_device, "fla_installed", lambda: True)
    broken = model_state(tiny_next)
    with pytest.raises(RuntimeError, match="got CPU tensors"), torch.no_grad():
        tiny_next(input_ids=ids, use_cache=False)  # the plain model cannot run here
    with torch.no_grad(), capture(tiny_next, CaptureSettings(routing=True)) as run:
        assert torch.equal(tiny_next(input_ids=ids, use_cache=False).logits, plain_logits)
        assert run.collect("routing") is not None
    with torch.no_grad(), capture(tiny_next, settings) as run:
        logits = tiny_next(input_ids=ids, use_cache=False).logits
        traced = run.collect("deltanet")
    assert torch.equal(logits, plain_logits)
    for field in ("state_norm_mean", "state_norm_max", "decay_mean", "beta_mean"):
        assert torch.equal(getattr(traced, field), getattr(plain, field)), field
    assert model_state(tiny_next) == broken
