"""The notebook tour (docs/tutorials/notebook.md, a jupytext notebook) runs top to bottom in a fresh Jupyter kernel on
the CPU, from the shipped dataset, in under a minute; its answers are the numbers the other tutorials quote, and its
figures reach the notebook as plotly outputs."""

import time

import jupytext
import pytest
from doc_blocks import DOCS, scratch_folder
from nbclient import NotebookClient

NOTEBOOK = DOCS / "tutorials" / "notebook.md"


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_the_tour_is_a_notebook_whose_code_cells_are_the_pages_python_blocks():
    notebook = jupytext.read(NOTEBOOK)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert notebook.metadata["kernelspec"]["name"] == "python3" and len(code) >= 10
    assert code[0].source.startswith("import workbench as wb")


@pytest.mark.docs
def test_the_tour_runs_in_a_fresh_kernel_in_under_a_minute(tmp_path, monkeypatch):
    folder = scratch_folder(tmp_path / "work")
    monkeypatch.setenv("PYTHONPATH", str(DOCS.parent))  # the kernel imports this checkout's workbench
    notebook = jupytext.read(NOTEBOOK)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"the notebook took {elapsed:.0f} s"
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    by_source = {c.source.splitlines()[0]: c for c in cells}
    assert "20261202T010421Z-a8e2a1b1" in _text(cells[0]) and "needle_sweep" in _text(cells[0])  # nano.runs
    balance = _text(by_source["demo.load_balance(layer=range(8)).round(3)"])
    assert "1.491" in balance and "0.810" in balance  # layer 0: CV, normalised entropy (routing tutorial)
    mass = _text(by_source['mass = demo.needle_mass()        # mean attention weight on the `needle` span, per (layer, head)'])
    assert "0.387" in mass
    error = _text(by_source["from workbench.notebook import MissingTable"])
    assert "has no `retrieval` table" in error
    figures = [c for c in cells if any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in c.outputs)]
    assert len(figures) == 4  # expert load, needle mass, needle sweep, pruning curves: plotly outputs
    assert "mass" in _text(cells[-1])  # the traced prompt's needle mass per (layer, head)


@pytest.fixture(autouse=True)
def _no_tqdm(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
