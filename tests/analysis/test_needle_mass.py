"""Needle mass has one definition (workbench/analysis/needle.py): checked on the hand trace against numbers worked
out on paper, its DuckDB form against its array form on the shipped dataset's rows, and then followed everywhere it
is quoted: the Attention recall and Long context pages' figure data, the token explorer, the needle-sweep probe's
table (against transformers' own eager attention probabilities) and the README's sentences."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.analysis import long_context, needle
from workbench.analysis.db import Scope, TraceDB
from support.app_pages import chart_data, run_page

ROOT = Path(__file__).resolve().parents[2]
NANO = ROOT / "datasets" / "nano"
# the sentences README used to carry live in the docs now (docs/tutorials/long-context.md, docs/guides/nano.md)
README = (ROOT / "docs" / "tutorials" / "long-context.md").read_text() + "\n" + (ROOT / "docs" / "guides" /
                                                                                  "nano.md").read_text()


def test_needle_mass_counts_rows_after_the_span_only(db, scope):
    """Hand trace, layer 3: needle [0, 1); rows at position 0 (0.9 both heads) cannot see all of it and never count.
    Head 0: s0 positions 1, 2 (0.2, 0.6) and s1 position 1 (0.2); head 1: 0.4, 0.8, 0.4."""
    table = needle.needle_mass(db, scope, "needle")
    assert table["head"].tolist() == [0, 1] and table.layer.tolist() == [3, 3] and table.rows.tolist() == [3, 3]
    assert table.mass.tolist() == pytest.approx([1.0 / 3, 1.6 / 3])
    best = needle.max_head(table)
    assert best["head"].tolist() == [1] and best.mass.tolist() == pytest.approx([1.6 / 3])
    assert needle.needle_mass(db, scope, "absent").empty
    rows = needle.row_max_head(db, scope.run_id, "s0", 3)
    assert rows.position.tolist() == [1, 2] and rows["head"].tolist() == [1, 1]
    assert rows.value.tolist() == pytest.approx([0.4, 0.8])


def test_the_array_form_by_hand():
    span_mass = np.array([[0.9, 0.9], [0.2, 0.4], [0.6, 0.8]])  # [Q, H] at positions 0, 1, 2
    mass, rows = needle.head_needle_mass(span_mass, np.array([0, 1, 2]), span_end=1)
    assert rows == 2 and mass.tolist() == pytest.approx([0.4, 0.6])
    none, zero = needle.head_needle_mass(span_mass, np.array([0, 1, 2]), span_end=5)
    assert zero == 0 and np.isnan(none).all()


def test_max_head_breaks_ties_to_the_lowest_head():
    frame = pd.DataFrame({"layer": [3, 3, 3, 7], "head": [0, 1, 2, 0], "mass": [0.5, 0.5, 0.1, 0.2]})
    assert needle.max_head(frame)[["layer", "head"]].values.tolist() == [[3, 0], [7, 0]]


@pytest.fixture(scope="module")
def nano():
    db = TraceDB(NANO)
    manifests = db.trace.manifests()
    trace = next(m["run_id"] for m in manifests if "attention" in m.get("tables", []))
    sweep = next(m["run_id"] for m in manifests if "needle_sweep" in m.get("tables", []))
    return db, Scope(trace), Scope(sweep)


def test_duckdb_form_equals_the_array_form_on_the_shipped_trace(nano):
    """Per sequence, the rows' arrays through head_needle_mass; pooled over sequences by their row counts."""
    db, trace, _ = nano
    rows = db.frame("SELECT a.seq_id, a.layer, a.head, a.position, a.span_mass['needle'] AS m, s.end_token "
                    "FROM attention a JOIN spans s USING (run_id, seq_id) WHERE a.run_id = ? AND s.span = 'needle'",
                    [trace.run_id])
    sums: dict = {}
    for (seq, layer), group in rows.groupby(["seq_id", "layer"]):
        matrix = group.pivot(index="position", columns="head", values="m").sort_index()  # [Q, H]
        mass, count = needle.head_needle_mass(matrix.to_numpy(), matrix.index.to_numpy(), group.end_token.iloc[0])
        if count:
            total, n = sums.get(layer, (0.0, 0))
            sums[layer] = (total + mass * count, n + count)
    expected = {layer: total / n for layer, (total, n) in sums.items()}
    table = needle.needle_mass(db, trace)
    for layer, group in table.groupby("layer"):
        assert group.mass.to_numpy() == pytest.approx(expected[layer], abs=1e-6)
    assert table.rows.unique().tolist() == [42]


def test_the_pages_draw_the_functions_numbers(nano):
    """Attention recall's heatmap is needle_mass; Long context's bar per attention layer is its max head, and its
    sweep heatmap cell is sweep_max_head's (shipped dataset)."""
    db, trace, sweep = nano
    expected = needle.needle_mass(db, trace)
    at = run_page(NANO, "attention", run_id=trace.run_id)
    heat = chart_data(at, "Needle mass on 'needle'")[0]
    z = np.asarray(heat["z"], dtype=float)
    assert heat["y"] == ["L3", "L7"] and z.ravel().tolist() == pytest.approx(expected.mass.tolist(), abs=1e-6)

    at = run_page(NANO, "long_context", run_id=trace.run_id)
    bars = {t["name"]: t for t in chart_data(at, "Where the 'needle' reaches the output")}
    best = needle.max_head(expected)
    attention_bar = bars["needle mass, max head"]
    assert attention_bar["x"] == ["L3", "L7"] and attention_bar["y"] == pytest.approx(best.mass.tolist(), abs=1e-6)
    assert [c[0] for c in attention_bar["customdata"]] == ["head 0, ", "head 2, "]

    at = run_page(NANO, "long_context", run_id=sweep.run_id)
    at.radio(key="sweep_value").set_value("needle_mass").run()
    cell = needle.sweep_max_head(db, sweep)
    layer3 = cell[cell.layer == 3].pivot(index="needle_depth", columns="context_length", values="value")
    (heat,) = chart_data(at, f"L3 (full_attention): {long_context.SWEEP_VALUES['needle_mass']}")
    assert np.asarray(heat["z"], dtype=float) == pytest.approx(layer3.sort_index().to_numpy(), abs=1e-6)
    assert "max head" in long_context.SWEEP_VALUES["needle_mass"]


def test_the_readme_quotes_the_function_on_the_shipped_dataset(nano):
    db, trace, sweep = nano
    heads = needle.sweep_head_mass(db, sweep)
    layer3 = heads[heads.layer == 3].sort_values("mass", ascending=False)
    best7 = needle.max_head(heads[heads.layer == 7]).iloc[0]
    assert layer3["head"].iloc[0] == 0 and (layer3.cells == 25).all()
    others = ", ".join(str(h) for h in layer3["head"].iloc[1:])
    masses = ", ".join(f"{m:.2f}" for m in layer3.mass.iloc[1:])
    assert (f"mean over the sweep's 25 cells, is {layer3.mass.iloc[0]:.2f} (heads {others}: {masses}); layer 7's\n"
            f"  max head (head {int(best7['head'])}) puts {best7.mass:.2f} on it.") in README

    cells = needle.sweep_max_head(db, sweep)
    cells = cells[cells.layer == 3].set_index(["context_length", "needle_depth"]).value
    short = cells[cells.index.get_level_values(0) <= 2048]
    at8k = cells.loc[8192]
    low, high = at8k[at8k.index < 1].min(), at8k[at8k.index < 1].max()
    assert f"{short.min():.2f}" == f"{short.max():.2f}"
    flat = README.replace("\n  ", " ")
    assert (f"{short.min():.2f} in every cell up to 2K tokens, {cells.loc[(4096, 0.0)]:.2f} at 4K depth 0, "
            f"{low:.2f}-{high:.2f} at 8K for depths < 1 ({at8k.loc[1.0]:.2f} at depth 1).") in flat

    traced = needle.needle_mass(db, trace)
    l3 = traced[traced.layer == 3].sort_values("mass", ascending=False)
    l7 = needle.max_head(traced[traced.layer == 7]).iloc[0]
    assert l3["head"].iloc[0] == 0
    assert (f"head 0 is the max head of needle mass: {l3.mass.iloc[0]:.2f} over the {int(l3.rows.iloc[0])} analysed "
            f"rows after the needle (every 64th row and the answer's tokens), against {l3.mass.iloc[1]:.2f} for the "
            f"layer's next head and {l7.mass:.2f} for layer 7's max head") in README.replace("\n", " ")
