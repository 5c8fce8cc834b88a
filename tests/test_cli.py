"""The CLI end to end on a written checkpoint: trace, info, and clean errors that leave traces untouched."""

import json

from typer.testing import CliRunner

from workbench.cli import app
from workbench.trace import open_trace

runner = CliRunner()


def _prompts(tmp_path, lines):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_trace_then_info(tmp_path, next_checkpoint):
    prompts = _prompts(tmp_path, ['{"id": "a", "text": "abc def", "label": "prose"}', '{"id": "b", "text": "x=1"}'])
    out = tmp_path / "trace"
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--prompts", str(prompts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "hello", "--out", str(out)])
    assert result.exit_code == 0, result.output
    trace = open_trace(out)
    assert len(trace.run_ids()) == 2
    assert trace.read("tokens").num_rows == len("abc def") + len("x=1") + len("hello")
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0
    assert "2 runs" in info.output and "routing:" in info.output and "B/token" in info.output


def test_errors_are_clear_and_leave_trace_untouched(tmp_path, next_checkpoint):
    out = tmp_path / "trace"
    ok = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "keep me", "--out", str(out)])
    assert ok.exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    bad = _prompts(tmp_path, ['{"id": "a", "text": "fine"}', '{"id": "b", "txt": "oops"}'])
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--prompts", str(bad), "--out", str(out)])
    assert result.exit_code == 2 and "line 2: missing required key 'text'" in result.output

    result = runner.invoke(app, ["trace", "--model", str(tmp_path / "missing"), "--text", "x", "--out", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output

    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--out", str(out)])
    assert result.exit_code == 2 and "exactly one of --prompts" in result.output

    (out / "workbench.json").write_text(json.dumps({"format": "workbench-trace", "schema_version": "9.0"}))
    before[out / "workbench.json"] = (out / "workbench.json").read_bytes()
    result = runner.invoke(app, ["trace", "--model", str(next_checkpoint), "--text", "x", "--out", str(out)])
    assert result.exit_code == 2 and "schema version 9.0" in result.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_schema_command_lists_every_column():
    from workbench.trace import TABLES

    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    for columns in TABLES.values():
        for column in columns:
            assert f"`{column.name}`" in result.output


def test_bad_flags_fail_clearly_before_loading(tmp_path, next_checkpoint):
    out = tmp_path / "trace"
    base = ["trace", "--model", str(next_checkpoint), "--text", "abc", "--out", str(out)]
    for extra, message in [
        (["--max-tokens", "0"], "--max-tokens"),
        (["--max-tokens", "-3"], "--max-tokens"),
        (["--dtype", "fp16"], "dtype takes auto, float32, bfloat16, float16, got 'fp16'"),
        (["--device", "cpu", "--device-map", "auto"], "either --device or --device-map"),
    ]:
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert not out.exists()


def test_unavailable_device_fails_clearly_before_anything_is_written(tmp_path):
    import torch

    if torch.cuda.is_available():
        device = f"cuda:{torch.cuda.device_count()}"
    else:
        device = "cuda"
    out = tmp_path / "trace"
    result = runner.invoke(app, ["trace", "--model", "nano", "--text", "x", "--out", str(out), "--device", device])
    assert result.exit_code == 2 and "CUDA GPU" in result.output
    result = runner.invoke(app, ["trace", "--model", "nano", "--text", "x", "--out", str(out), "--device", "tpu9"])
    assert result.exit_code == 2 and "unknown device" in result.output
    assert not out.exists()


def test_fla_path_refused_before_the_model_loads(tmp_path, monkeypatch):
    """--deltanet-path fla without fla installed (or on the CPU) fails at once, naming the fix."""
    import importlib.util

    import workbench.loading as loading

    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(loading, "load_model", no_load)
    out = tmp_path / "trace"
    args = ["trace", "--model", "nano", "--text", "x", "--out", str(out), "--deltanet", "--deltanet-path", "fla"]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fla" else real_find_spec(name, *a))
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "needs flash-linear-attention" in result.output
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "fla" else real_find_spec(name, *a))
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 2 and "CUDA only" in result.output
    assert not out.exists()


def _entry_point(tmp_path, *args):
    """Run the installed entry point's `main` in a fresh interpreter, with an atexit handler of the caller's."""
    import subprocess
    import sys

    script = ("import atexit, sys; atexit.register(lambda: print('atexit ran', flush=True)); "
              f"sys.argv = ['workbench', *{list(args)!r}]; from workbench.cli import main; main()")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_entry_point_keeps_exit_codes_output_and_atexit_handlers(tmp_path, next_checkpoint):
    """`main` skips interpreter teardown (os._exit) but not what a normal exit does: the exit code of the command,
    everything printed, the atexit handlers, and files complete on disk."""
    out = tmp_path / "trace"
    ok = _entry_point(tmp_path, "trace", "--model", str(next_checkpoint), "--text", "abc def", "--out", str(out))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "1 sequence, 7 tokens" in ok.stdout and ok.stdout.rstrip().endswith("atexit ran")
    assert open_trace(out).read("tokens").num_rows == 7
    bad = _entry_point(tmp_path, "trace", "--model", str(next_checkpoint), "--text", "x", "--out", str(out),
                       "--dtype", "float8")
    assert bad.returncode == 2 and "error:" in bad.stderr and "float8" in bad.stderr
    assert bad.stdout.strip() == "atexit ran"
    assert _entry_point(tmp_path, "--help").returncode == 0
