"""Every example of the docs' Reading traces guide runs against the hand-written trace (tests/hand_trace.py): its
Python blocks (with traces/demo pointing at the fixture) and its SQL blocks plus the MTP tutorial's (on
`Trace.duckdb()`). Their results are checked against the fixture's known numbers. (The other pages' blocks run on
the shipped dataset: tests/docs/test_doc_examples.py.)"""

import re
from pathlib import Path

import pytest

from workbench.trace import open_trace

DOCS = Path(__file__).resolve().parents[2] / "docs"
READING = (DOCS / "guides" / "reading-traces.md").read_text()
MTP = (DOCS / "tutorials" / "mtp.md").read_text()


def _blocks(language: str, text: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_guide_has_reading_examples():
    assert len(_blocks("python", READING)) >= 3 and len(_blocks("sql", READING)) >= 3


def test_python_reading_examples_run(hand_trace):
    path, runs = hand_trace
    namespace: dict = {}
    for block in _blocks("python", READING):
        exec(compile(block.replace("traces/demo", str(path)), "reading-traces.md", "exec"), namespace)  # noqa: S102
    assert namespace["routing"].num_rows == 6  # run B (the newest): 3 tokens x 2 MoE layers
    assert set(namespace["tokens"]["run_id"]) == {runs["a"], runs["b"]}  # datasets keeps run_id (a file column)
    assert len(namespace["tokens"]) == 5 + 3
    # attention rows of run A: per position 0, 1, 2 (s0) and 0, 1 (s1), heads 0 and 1
    assert namespace["needle"] == pytest.approx([0.9, 0.9, 0.2, 0.4, 0.6, 0.8, 0.9, 0.9, 0.2, 0.4])
    assert namespace["balance"].empty  # no prompt of the fixture has the label "passkey"
    # needle mass of run A (the oldest), rows after the needle only: head 0 (0.2 0.6 0.2), head 1 (0.4 0.8 0.4)
    assert namespace["heads"].mass.tolist() == pytest.approx([1.0 / 3, 1.6 / 3])
    assert namespace["best"]["head"].tolist() == [1]


def test_sql_examples_run(hand_trace):
    path, runs = hand_trace
    connection = open_trace(path).duckdb()
    results = [connection.execute(block).df() for block in _blocks("sql", READING) + _blocks("sql", MTP)]
    assert all(len(result) for result in results)
    load = [r for r in results if {"layer", "e", "n"} <= set(r.columns)][0]
    # layer 0 over both runs: run A counts 4 2 2 2 (experts 0..3), run B [0,1] [2,0] [1,3] -> 2 2 1 1
    layer0 = load[load.layer == 0].set_index("e").n.sort_index()
    assert layer0.tolist() == [6, 4, 3, 3]
    acceptance = [r for r in results if "acceptance" in r.columns][0].set_index("label")
    assert acceptance.acceptance.to_dict() == {"x": 0.5, "y": 1.0}  # run A's mtp rows: s0 T F, s1 T
    needle = [r for r in results if "mass" in r.columns][0]
    assert needle.set_index("head").mass.sort_index().tolist() == pytest.approx([1.0 / 3, 1.6 / 3])
