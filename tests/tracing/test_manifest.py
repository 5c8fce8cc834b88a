"""The one resume check (tracing/manifest.py), as the writer, the CLI, the local and the Ray engine call it, and
write_probe_run: a probe's run is one complete part with the run manifest and a `probe` record."""

import json

import pyarrow as pa
import pytest

from workbench.adapters import get_adapter
from workbench.capture import CaptureSettings
from workbench.inputs.prompts import Prompt
from workbench.loading import LoadedModel
from workbench.trace import open_trace, table_schema
from workbench.tracing import RunNotResumable, check_resume, run_manifest, write_probe_run

SETTINGS = CaptureSettings(attention=True)
PROMPTS = [Prompt("a", "alpha"), Prompt("b", "beta"), Prompt("c", "gamma")]


def _manifest(**changes) -> dict:
    manifest = {"run_id": "r1", "status": "running", "capture": SETTINGS.to_dict(), "max_tokens": 64,
                "model": {"source": "tiny", "config_hash": "abc"}, "prompts": [{"id": "a"}, {"id": "b"}]}
    return {**manifest, **changes}


def test_a_run_in_progress_resumes_with_its_committed_ids(tmp_path):
    assert check_resume(tmp_path, "r1", _manifest()) == {"a", "b"}  # the run's state only (writer, CLI)
    assert check_resume(tmp_path, "r1", _manifest(), SETTINGS, max_tokens=64, model={"config_hash": "abc"},
                        prompts=PROMPTS) == {"a", "b"}


def test_a_missing_or_complete_run_is_not_resumable(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r0.json").write_text("{}")
    with pytest.raises(RunNotResumable, match=r"no run 'r1' with a committed part .*\(runs: r0\)"):
        check_resume(tmp_path, "r1", None, SETTINGS)
    with pytest.raises(RunNotResumable, match="is complete: nothing to resume"):
        check_resume(tmp_path, "r1", _manifest(status="complete"))


@pytest.mark.parametrize("asked, message", [
    (dict(settings=CaptureSettings()), "capture settings .* same capture options"),
    (dict(max_tokens=None), "max_tokens 64; resume it with the same --max-tokens"),
    (dict(model={"config_hash": "xyz"}), r"model tiny \(config hash abc\); resume it with the same --model"),
    (dict(prompts=PROMPTS[1:]), r"holds prompts not in the given prompts \(\['a'\]...\)"),
], ids=["settings", "max_tokens", "model", "prompts"])
def test_a_run_traced_another_way_is_refused(tmp_path, asked, message):
    arguments = {"settings": SETTINGS, "max_tokens": 64, "model": {"config_hash": "abc"}, "prompts": PROMPTS, **asked}
    settings = arguments.pop("settings")
    with pytest.raises(ValueError, match=message):
        check_resume(tmp_path, "r1", _manifest(), settings, **arguments)


def test_write_probe_run_commits_one_complete_run(tiny_next, tokenizer, tmp_path):
    from datetime import datetime, timezone

    loaded = LoadedModel(tiny_next, tokenizer, get_adapter("Qwen3NextForCausalLM"), "tiny", "memory", None)
    started = datetime.now(timezone.utc)
    rows = pa.Table.from_pylist([{"intervention": "expert_mask", "criterion": "none", "fraction": 0.0,
                                  "masked_per_layer": 0, "suite": "s", "n": 3, "metric": "loss", "value": 1.5}],
                                schema=table_schema("expert_pruning"))
    settings, records = CaptureSettings(routing=False), [{"id": "p0", "num_tokens": 3, "label": "x"}]
    run = write_probe_run(loaded, tmp_path, [("expert_pruning", rows), ("expert_pruning", rows)], settings, records,
                          started, probe={"name": "demo", "seed": 0})
    [manifest] = open_trace(tmp_path).manifests()
    assert manifest["run_id"] == run.run_id and run.manifest_path.name == f"{run.run_id}.json"
    assert manifest["status"] == "complete" and manifest["probe"] == {"name": "demo", "seed": 0}
    assert manifest["prompts"] == records and manifest["num_tokens"] == 3 and manifest["tables"] == ["expert_pruning"]
    expected = run_manifest(loaded, settings, records, started, probe={"name": "demo", "seed": 0})
    expected = json.loads(json.dumps(expected))  # as the manifest file holds it (tuples as lists)
    del expected["finished"]  # set again when the run is finished
    assert {k: manifest[k] for k in expected} == expected
    assert len(open_trace(tmp_path).read("expert_pruning")) == 2  # a name given twice appends
