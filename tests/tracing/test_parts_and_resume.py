"""Long runs survive: parts committed as the run goes, resume after SIGKILL, Ctrl-C at a batch boundary, and a
failed start that leaves no folder behind."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from table_compare import assert_same_tables, trace_frames
from typer.testing import CliRunner

import workbench.capture.context
from workbench.adapters import get_adapter
from workbench.capture import CaptureSettings
from workbench.cli import app
from workbench.loading import LoadedModel
from workbench.inputs.prompts import Prompt
from workbench.trace import open_trace
from workbench.tracing import trace_prompts

SETTINGS = CaptureSettings(deltanet=True, attention=True, attention_stride=8)
PROMPTS = [Prompt(f"p{i}", f"prompt {i}: " + "abc def ghi " * (2 + i % 5), "x" if i % 2 else None) for i in range(10)]


@pytest.fixture
def loaded(tiny_next, tokenizer):
    return LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = [{here!r}, {tests!r}]  # this module, and tests/ (support.toy, table_compare.py)
    import workbench.trace.writer as writer
    from workbench.adapters import get_adapter
    from workbench.loading import LoadedModel
    from workbench.tracing import trace_prompts
    from support.toy import build_model, byte_tokenizer, qwen3_next_config
    from test_parts_and_resume import PROMPTS, SETTINGS

    tokenizer = byte_tokenizer()
    model = build_model(qwen3_next_config(num_layers=4, vocab_size=len(tokenizer)), seed=1)
    loaded = LoadedModel(model, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    real_write, writes = writer.write_json_atomic, []

    def write_then_die(path, data):
        writes.append(path)
        if len(writes) == 3:  # third part: its files are in place, its manifest update never happens
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(path, data)

    writer.write_json_atomic = write_then_die
    trace_prompts(loaded, PROMPTS, sys.argv[1], SETTINGS, progress=False, part_tokens=60, batch_tokens=100)
""")


def test_resume_after_sigkill_equals_uninterrupted_run(loaded, tmp_path):
    out = tmp_path / "killed"
    here = os.path.dirname(__file__)
    script = KILLED_RUN.format(here=here, tests=os.path.dirname(here))
    died = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=600)
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    trace = open_trace(out)
    [manifest] = trace.manifests()
    committed = [p["id"] for p in manifest["prompts"]]
    assert manifest["status"] == "running" and 0 < len(committed) < len(PROMPTS)
    strays = [p for p in out.rglob("part-*.parquet") if str(p) not in set(trace.files(p.parent.parent.name))]
    assert strays, "the killed part's files should be in place but unlisted"
    assert set(trace_frames(out)["tokens"].seq_id) == set(committed)  # readable, and only the committed prompts

    summary = trace_prompts(loaded, PROMPTS, out, SETTINGS, progress=False, part_tokens=60, batch_tokens=100,
                            resume=manifest["run_id"])
    assert summary.skipped == sorted(committed) and summary.traced_sequences == len(PROMPTS) - len(committed)
    assert not any(p.exists() for p in strays) and not (out / ".staging").exists()
    whole = tmp_path / "whole"
    trace_prompts(loaded, PROMPTS, whole, SETTINGS, progress=False)
    resumed = trace_frames(out)
    assert_same_tables(resumed, trace_frames(whole))
    assert not resumed["routing"].duplicated(["seq_id", "layer", "position"]).any()
    [final] = open_trace(out).manifests()
    assert final["status"] == "complete" and [p["id"] for p in final["prompts"]] == [p.id for p in PROMPTS]


def test_ctrl_c_stops_at_a_batch_boundary_and_says_how_to_resume(tmp_path, next_checkpoint, monkeypatch):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"id": "{p.id}", "text": "{p.text}"}}\n' for p in PROMPTS))
    out = tmp_path / "trace"
    real, calls = workbench.capture.context.CaptureRun.collect, []

    def collect_then_ctrl_c(run, kind=None):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal would on Ctrl-C, during the third batch
        return real(run, kind)

    monkeypatch.setattr(workbench.capture.context.CaptureRun, "collect", collect_then_ctrl_c)
    args = ["trace", "--model", str(next_checkpoint), "--prompts", str(prompts), "--out", str(out),
            "--part-tokens", "50"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    trace = open_trace(out)
    [manifest] = trace.manifests()
    assert "interrupted: run " in result.output and "keeps 3 prompts" in result.output
    assert f"--resume {manifest['run_id']}" in result.output
    assert [p["id"] for p in manifest["prompts"]] == ["p0", "p1", "p2"]
    assert sorted(set(trace.read("tokens").column("seq_id").to_pylist())) == ["p0", "p1", "p2"]
    assert not (out / ".staging").exists()
    monkeypatch.setattr(workbench.capture.context.CaptureRun, "collect", real)
    result = CliRunner().invoke(app, [*args, "--resume", manifest["run_id"]])
    assert result.exit_code == 0 and "3 committed earlier" in result.output
    assert "7 committed earlier" not in result.output
    [manifest] = open_trace(out).manifests()
    assert manifest["status"] == "complete" and len(manifest["prompts"]) == len(PROMPTS)


def test_failed_start_leaves_no_new_folder(loaded, tmp_path, next_checkpoint, monkeypatch):
    out = tmp_path / "new"
    result = CliRunner().invoke(app, ["trace", "--model", str(tmp_path / "missing"), "--text", "x", "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(loaded.model, "forward", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        trace_prompts(loaded, PROMPTS, out, SETTINGS, progress=False)
    assert not out.exists()


def test_resume_refuses_what_it_cannot_continue(loaded, tmp_path):
    done = trace_prompts(loaded, PROMPTS[:2], tmp_path, progress=False)
    with pytest.raises(ValueError, match="is complete: nothing to resume"):
        trace_prompts(loaded, PROMPTS[:2], tmp_path, progress=False, resume=done.run_id)
    with pytest.raises(ValueError, match="no run 'nope' with a committed part"):
        trace_prompts(loaded, PROMPTS[:2], tmp_path, progress=False, resume="nope")


def test_a_bad_prompt_later_in_the_file_keeps_what_ran_and_resumes(loaded, tmp_path):
    """Prompts are tokenised a window at a time as the run goes: a bad span in a later window stops the run there,
    after committing every batch that ran, and --resume continues once the prompt is fixed."""
    bad = Prompt("bad", "short text", None, {"spans": [{"name": "key", "start": 3, "end": 99}]})  # past the text
    prompts = [*PROMPTS[:8], bad, *PROMPTS[8:]]
    out = tmp_path / "trace"
    with pytest.raises(ValueError, match=r"bad.*--resume \S+"):  # names the prompt and how to continue
        trace_prompts(loaded, prompts, out, SETTINGS, progress=False, batch_tokens=40, part_tokens=10_000)
    [manifest] = open_trace(out).manifests()
    kept = [p["id"] for p in manifest["prompts"]]
    assert manifest["status"] == "running" and kept and set(kept) <= {p.id for p in PROMPTS[:8]}
    assert not (out / ".staging").exists()
    fixed = [*PROMPTS[:8], Prompt("bad", "short text", None, {"spans": [{"name": "key", "start": 0, "end": 5}]}),
             *PROMPTS[8:]]
    summary = trace_prompts(loaded, fixed, out, SETTINGS, progress=False, batch_tokens=40, resume=manifest["run_id"])
    assert summary.skipped == sorted(kept) and summary.num_sequences == len(fixed)
    whole = tmp_path / "whole"
    trace_prompts(loaded, fixed, whole, SETTINGS, progress=False)
    assert_same_tables(trace_frames(out), trace_frames(whole))
