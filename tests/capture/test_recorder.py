"""A capture kind is its own package plus one registration line. The test kind under tests/support/final_norm_kind/
(settings, schema, recorder, table builder) gets capture(), a CaptureSettings switch and option, `workbench trace`
flags, a `final_norm` table in the trace and a `workbench schema` entry, with no edit to the library."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support.model_state import hook_count
from typer.testing import CliRunner

from workbench.capture import CaptureSettings, SequenceInfo, capture
from workbench.capture.kind import CaptureKind, KindSettings, option, register, registered_kinds, unregister

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def final_norm_kind():
    import support.final_norm_kind as package  # its __init__ registers the kind (the one registration line)

    if "final_norm" not in registered_kinds():
        register(package.KIND)  # registered by an earlier test's import, then unregistered
    try:
        yield package
    finally:
        unregister("final_norm")


def final_norms(model, ids: torch.Tensor) -> torch.Tensor:
    """Reference: ||final norm output||_2 per token, fp64, from a hook outside any capture."""
    seen = {}
    handle = model.get_decoder().norm.register_forward_hook(lambda m, a, out: seen.update(out=out))
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    return seen["out"].double().norm(dim=-1).reshape(-1)


def test_the_test_kind_runs_through_capture_with_its_own_option(tiny_next, final_norm_kind):
    ids = torch.randint(0, tiny_next.config.vocab_size, (1, 11), generator=torch.Generator().manual_seed(2))
    hooks = hook_count(tiny_next)
    settings = CaptureSettings(routing=False, final_norm=True, final_norm_stride=3)
    assert list(settings) == ["final_norm"] and settings["final_norm"].final_norm_stride == 3
    assert CaptureSettings.from_dict(settings.to_dict()) == settings
    with torch.no_grad(), capture(tiny_next, settings) as run:
        tiny_next(input_ids=ids, use_cache=False)
        tables = run.tables(SequenceInfo("s", 11))
    assert hook_count(tiny_next) == hooks and set(tables) == {"final_norm"}
    table = tables["final_norm"]
    assert table.column("position").to_pylist() == [0, 3, 6, 9]
    expected = final_norms(tiny_next, ids)[[0, 3, 6, 9]]
    torch.testing.assert_close(torch.tensor(table.column("norm").to_numpy()).double(), expected, atol=1e-5, rtol=1e-6)


def test_the_test_kind_gets_its_flags_table_and_schema_entry_from_its_package(tmp_path, next_checkpoint, tiny_next,
                                                                              final_norm_kind):
    from workbench.cli import build_app
    from workbench.trace import open_trace

    app, runner = build_app(), CliRunner()
    assert "--final-norm-stride" in runner.invoke(app, ["trace", "--help"], env={"COLUMNS": "300"}).output
    schema = runner.invoke(app, ["schema"]).output
    assert "**`final_norm`**" in schema and "||final_norm(h_t)||_2 of the token" in schema

    out = tmp_path / "trace"
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--dtype", "float32", "--text",
                                 "a capture kind of its own", "--no-routing", "--final-norm", "--final-norm-stride",
                                 "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    trace = open_trace(out)
    (run_id,) = trace.run_ids()
    assert trace.manifests()[0]["capture"]["final_norm_stride"] == 2
    assert not trace.has_rows("routing", run_id)
    ids = torch.tensor([trace.read("tokens").column("token_id").to_pylist()])
    rows = trace.read("final_norm")
    assert rows.column("position").to_pylist() == list(range(0, ids.shape[1], 2))
    expected = final_norms(tiny_next, ids)[::2]
    torch.testing.assert_close(torch.tensor(rows.column("norm").to_numpy()).double(), expected, atol=1e-5, rtol=1e-5)


def test_the_test_kind_refuses_bad_options_in_one_line(tmp_path, final_norm_kind):
    from workbench.cli import build_app

    app, runner = build_app(), CliRunner()
    for args, message in ((["--final-norm", "--final-norm-stride", "0"], "final_norm_stride must be an integer >= 1, got 0 (CLI: --final-norm-stride)"),
                          (["--final-norm-stride", "2"], "final_norm_stride needs final_norm=True (CLI: "
                                                         "--final-norm-stride needs --final-norm)")):
        result = runner.invoke(app, ["trace", "--text", "x", "--out", str(tmp_path / "t"), *args])
        assert result.exit_code == 2 and result.output.strip() == f"error: {message}", result.output
        assert not (tmp_path / "t").exists()


def test_a_workbench_subprocess_loads_a_kind_named_in_the_environment():
    env = {**os.environ, "WORKBENCH_CAPTURE_KINDS": "support.final_norm_kind",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "schema"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "**`final_norm`**" in done.stdout
    env["WORKBENCH_CAPTURE_KINDS"] = "support.no_such_kind"
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "schema"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "WORKBENCH_CAPTURE_KINDS names 'support.no_such_kind'" in done.stderr


def test_registration_refuses_a_duplicate_kind_option_or_table(final_norm_kind):
    with pytest.raises(ValueError, match="'final_norm' is already registered"):
        register(final_norm_kind.KIND)

    class Clashing(KindSettings):
        attention_stride: int = option(1, "an option another kind already has")

    from dataclasses import dataclass

    clashing = dataclass(Clashing)
    with pytest.raises(ValueError, match=r"option names already used by another kind: \['attention_stride'\]"):
        register(CaptureKind(name="clash", settings=clashing, doc="", tables={}))
    with pytest.raises(ValueError, match=r"tables already written by another kind: \['routing'\]"):
        register(CaptureKind(name="clash", settings=KindSettings, doc="", tables={"routing": ()}))
    assert "clash" not in registered_kinds()


def test_settings_name_the_kind_that_is_off_or_unknown(tiny_next):
    with pytest.raises(ValueError, match=r"unknown capture settings: \['atention'\]"):
        CaptureSettings(atention=True)
    with pytest.raises(ValueError, match="deltanet_heads needs deltanet=True"):
        CaptureSettings(deltanet_heads="per_head")
    with capture(tiny_next, CaptureSettings(routing=False)) as run:
        with pytest.raises(ValueError, match="deltanet capture is off"):
            run.recorder("deltanet")


def test_removed_on_error_unhooks_what_attach_registered_before_it_failed():
    """A recorder's attach that fails half-way leaves no hook on the model; one that succeeds keeps them all."""
    from workbench.capture.recorder import removed_on_error

    layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    handles = []
    with pytest.raises(RuntimeError, match="third layer"):
        with removed_on_error(handles):
            for i, layer in enumerate(layers):
                if i == 2:
                    raise RuntimeError("no router on the third layer")
                handles.append(layer.register_forward_hook(lambda *a: None))
    assert handles == [] and all(not layer._forward_hooks for layer in layers)
    with removed_on_error(handles):
        handles += [layer.register_forward_hook(lambda *a: None) for layer in layers]
    assert len(handles) == 3 and all(len(layer._forward_hooks) == 1 for layer in layers)
