"""`--engine ray`: 2 local CPU workers on the shipped nano model give the same tables as a single-process trace."""

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.trace import open_trace

ray = pytest.importorskip("ray", reason="Ray is in the dev extra: make install")

PROMPTS = [("a", "the pass key is 12345 . what is the pass key ?"), ("b", "a = 3 ; b = 4 ; a + b ="),
           ("c", "copy : x y z"), ("d", "the cat sat on the mat . the dog sat on the log ."), ("e", "1 2 3 4 5 6")]
KEYS = ["seq_id", "layer", "position", "head"]


def _frames(root):
    trace = open_trace(root)
    frames = {}
    for table in trace.tables():
        frame = trace.read(table).to_pandas().drop(columns="run_id")
        frames[table] = frame.sort_values([k for k in KEYS if k in frame.columns]).reset_index(drop=True).astype(str)
    return trace, frames


def test_two_cpu_workers_equal_single_process(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"id": "{i}", "text": "{t}", "label": "l{n % 2}"}}\n'
                               for n, (i, t) in enumerate(PROMPTS)))
    common = ["trace", "--model", "nano", "--prompts", str(prompts), "--deltanet", "--attention", "--part-tokens", "8"]
    single = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "single")])
    assert single.exit_code == 0, single.output
    distributed = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "ray"), "--engine", "ray",
                                           "--num-workers", "2"])
    assert distributed.exit_code == 0, distributed.output
    one_trace, one = _frames(tmp_path / "single")
    ray_trace, many = _frames(tmp_path / "ray")
    assert sorted(one) == sorted(many)
    for table in one:
        assert one[table].equals(many[table]), table
    [manifest] = ray_trace.manifests()
    assert manifest["status"] == "complete" and manifest["engine"]["replicas"] == 2
    assert [p["id"] for p in manifest["prompts"]] == [i for i, _ in PROMPTS]
    replicas = {name.split("-")[1].split("_")[0] for name in manifest["parts"]["routing"]}  # part-<replica>_<call>-<n>
    assert len(replicas) == 2, "both workers should have committed parts into the one run"
    assert not (tmp_path / "ray" / ".staging").exists()
