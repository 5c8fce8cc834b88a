"""The notebook API answers each question with the dashboard's own analysis function, and its numbers match an
independent DuckDB query on the shipped dataset (datasets/nano) or hand-worked numbers of the hand-written trace.
Runs are picked by id, unique prefix or name; a missing table or an ambiguous pick is refused in one line."""

import math
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.analysis import attention, deltanet, long_context, needle, routing, sparsity
from workbench.analysis.db import Scope, TraceDB
from workbench.notebook import AmbiguousRun, MissingTable, RunPickError

NANO = Path(__file__).resolve().parents[2] / "datasets" / "nano"
DEMO = "20261202T010421Z-a8e2a1b1"  # the shipped demo trace: routing, attention, DeltaNet, saliency, MTP
FILES = f"read_parquet('{NANO}/%s/*/*.parquet', hive_partitioning = false)"


@pytest.fixture(scope="module")
def nano():
    return wb.open(NANO)


@pytest.fixture(scope="module")
def db():
    return TraceDB(NANO)


def test_import_workbench_loads_no_model_or_analysis_stack():
    code = ("import sys, workbench\n"
            "print(sorted(m for m in ('torch', 'transformers', 'pandas', 'duckdb', 'plotly') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_runs_are_listed_and_picked_by_id_prefix_or_name(nano):
    runs = nano.runs
    assert len(runs) == 8 and runs.run_id.iloc[0] == DEMO
    assert dict(zip(runs.run_id, runs.kind))["20261202T010837Z-6a04f7f5"] == "intervention"  # the prune what-if
    assert runs.set_index("run_id").tokens[DEMO] == 4781
    assert nano.run(DEMO).id == nano.run("20261202T010421Z").id == DEMO
    assert nano.run("needle_sweep").id == "20261202T010615Z-7381ad88"  # a probe's run by the probe's name
    with pytest.raises(RunPickError, match=r"'20261202T01' names 6 runs") as error:
        nano.run("20261202T01")
    assert "\n" not in str(error.value)
    with pytest.raises(RunPickError, match="no run named 'demo'"):
        nano.run("demo")
    with pytest.raises(AmbiguousRun, match="holds 8 runs, pick one"):
        nano.run()


def test_expert_load_is_the_dashboard_function_and_counts_each_slot(nano, db):
    run = nano.run(DEMO)
    load = run.expert_load(layer=3, label="passkey")
    pd.testing.assert_frame_equal(load, routing.expert_load(db, Scope(DEMO, (3,), "passkey"), 128))
    direct = duckdb.sql(
        f"SELECT e AS expert, count(*) AS n FROM (SELECT unnest(r.topk_ids) AS e FROM {FILES % 'routing'} r "
        f"WHERE r.run_id = '{DEMO}' AND r.layer = 3 AND r.seq_id IN (SELECT seq_id FROM {FILES % 'tokens'} "
        f"WHERE run_id = '{DEMO}' AND label = 'passkey')) GROUP BY e").df()
    counts = dict(zip(direct.expert, direct.n))
    assert len(load) == 128 and load.layer.eq(3).all()  # every expert, never-chosen ones with 0
    assert load.set_index("expert")["count"].to_dict() == {e: counts.get(e, 0) for e in range(128)}
    assert load.fraction.sum() == pytest.approx(1.0)
    assert run.load_balance(layer=3, label="passkey").unused.item() == 128 - len(counts)


def test_state_half_lives_are_ln2_over_the_token_weighted_log_decay(nano, db):
    lives = nano.run(DEMO).state_half_lives()
    pd.testing.assert_frame_equal(lives, deltanet.head_summary(db, Scope(DEMO)))
    direct = duckdb.sql(f"SELECT layer, head, sum(log_decay_mean * tokens) / sum(tokens) AS g FROM "
                        f"{FILES % 'deltanet_head_summary'} WHERE run_id = '{DEMO}' GROUP BY ALL").df()
    expected = {(r.layer, r.head): math.log(2) / -r.g for r in direct.itertuples()}
    assert len(lives) == len(expected) == 6 * 8  # 6 DeltaNet layers x 8 value heads
    assert {(r.layer, r.head): r.half_life for r in lives.itertuples()} == pytest.approx(expected)


def test_attention_and_long_context_questions_are_the_pages_functions(nano, db):
    run = nano.run(DEMO)
    pd.testing.assert_frame_equal(run.needle_mass(), needle.needle_mass(db, Scope(DEMO), "needle"))
    pd.testing.assert_frame_equal(run.needle_by_layer(), long_context.needle_by_layer(db, Scope(DEMO), "needle"))
    pd.testing.assert_frame_equal(run.expert_saliency(layer=[0, 7]), sparsity.expert_saliency(db, Scope(DEMO, (0, 7))))
    sweep = nano.run("needle_sweep")
    pd.testing.assert_frame_equal(sweep.needle_sweep(), long_context.sweep_grid(db, Scope(sweep.id), "exact_match"))
    best = run.needle_mass().sort_values("mass").iloc[-1]
    assert (best["layer"], best["head"]) == (3, 0)  # the nano's retrieval head (README, Attention recall tutorial)


def test_retrieval_heads_from_the_retrieval_table(hand_trace):
    path, runs = hand_trace
    run = wb.open(path).run(runs["a"])
    scores = run.retrieval_heads()
    pd.testing.assert_frame_equal(scores, attention.retrieval_summary(TraceDB(path), Scope(runs["a"])))
    assert scores[["layer", "head"]].values.tolist() == [[3, 0], [3, 1]]
    assert scores.score.tolist() == pytest.approx([0.75, 0.25])  # head 0: s0 1.0, s1 0.5; head 1: 0.25 twice
    assert len(run.retrieval_heads(top=1)) == 1


def test_a_question_on_a_run_without_its_table_names_the_table_and_the_runs_with_it(nano):
    with pytest.raises(MissingTable, match=r"no `retrieval` table \(written by a probe") as error:
        nano.run(DEMO).retrieval_heads()
    assert "\n" not in str(error.value)
    with pytest.raises(MissingTable, match=f"no `routing` table.*runs here with it: {DEMO}"):
        nano.run("needle_sweep").expert_load()


def test_figures_draw_the_questions_frames(nano):
    run = nano.run(DEMO)
    figure = run.plot.expert_load(layer=3)
    load = run.expert_load(layer=3)
    drawn = np.asarray(figure.data[0].z, float)[0]  # never-chosen experts are drawn as a marked gap, not 0
    want = load.sort_values("expert").fraction.to_numpy()
    assert np.isnan(drawn).tolist() == (want == 0).tolist()
    assert drawn[want > 0].tolist() == pytest.approx(want[want > 0].tolist())
    lives = run.plot.state_half_lives()
    assert np.nanmax(np.asarray(lives.data[0].z, float)) == pytest.approx(np.log10(run.state_half_lives().half_life.max()))
    accuracy = nano.run("expert_pruning").plot.pruning_curves()
    assert {trace.name for trace in accuracy.data} == {"frequency", "reap", "random"}
    for figure in (run.plot.needle_mass(), run.plot.state_norms("passkey_1024-s0-0000"), run.plot.needle_by_layer(),
                   run.plot.mtp_acceptance("position"), nano.run("needle_sweep").plot.needle_sweep()):
        assert figure.data, figure.layout.title.text


def test_trace_from_python_returns_the_new_run(tmp_path, next_checkpoint):
    prompts = [{"id": "p0", "text": "the pass key is 123 .", "label": "passkey",
                "spans": [{"name": "needle", "start": 16, "end": 19}]}, "a second prompt"]
    run = wb.trace(next_checkpoint, prompts, tmp_path / "t", attention=True, deltanet=True, progress=False)
    assert run.prompts.id.tolist() == ["p0", "text-1"] and run.prompts.label.tolist()[0] == "passkey"
    assert {"routing", "attention", "deltanet", "spans"} <= set(run.tables)
    tokens = run.manifest["num_tokens"]
    load = run.expert_load()
    assert load.groupby("layer")["count"].sum().eq(tokens * run.facts.top_k).all()  # every token's k slots
    assert wb.open(tmp_path / "t").runs.run_id.tolist() == [run.id] and wb.open(tmp_path / "t").run().id == run.id


def test_trace_refuses_a_bare_string_and_duplicate_ids(tmp_path):
    from workbench.inputs.prompts import PromptFileError

    with pytest.raises(PromptFileError, match="wrap one text in a list"):
        wb.trace("nano", "the pass key is 1 .", tmp_path / "t")
    with pytest.raises(PromptFileError, match="unique ids"):
        wb.trace("nano", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_probe_and_mtp_questions_are_the_pages_functions(nano, db):
    from workbench.analysis import mtp

    probe = nano.run("routing_specialization")
    pd.testing.assert_frame_equal(probe.label_js(), sparsity.label_js_by_layer(db, Scope(probe.id)))
    pd.testing.assert_frame_equal(probe.vocab_fixedness(), sparsity.vocab_fixedness(db, Scope(probe.id), 0.9))
    pd.testing.assert_frame_equal(probe.label_experts(), sparsity.label_top_experts(db, Scope(probe.id), "trained"))
    direct = duckdb.sql(f"SELECT model, avg(js_bits) AS js FROM {FILES % 'label_divergence'} GROUP BY model").df()
    assert probe.label_js().groupby("model").js_bits.mean().to_dict() == pytest.approx(dict(zip(direct.model, direct.js)))
    overlap = nano.run(DEMO).mtp_routing_overlap()
    pd.testing.assert_frame_equal(overlap, mtp.mtp_routing_overlap(db, Scope(DEMO), 8))  # the MTP layer: after 8
    assert overlap.set_index("layer").jaccard.idxmax() == 7  # it routes like the trunk layer it started from
