"""Every code block of the docs runs: each page's python, bash and sql blocks in order, in a scratch folder
(tests/docs/doc_blocks.py), then a few of the numbers the page quotes are checked in the blocks' namespace. A block
that cannot run on a CPU box must say why in its title ("Not run by the tests: ..."); two pages have tests of their
own (DEDICATED)."""

import pytest
from doc_blocks import NOT_CODE, RUNNABLE, SKIP, blocks, pages, run_page, scratch_folder

DEDICATED = {
    "guides/reading-traces.md": "tests/trace/test_reading_examples.py (against the hand-written fixture trace)",
    "tutorials/notebook.md": "tests/docs/test_notebook.py (executed as a notebook by nbclient)",
    "tutorials/generation.md": "tests/generation/test_generate.py::test_docs_generation_examples_run",
    "tutorials/attribution.md": "tests/probes/test_attribution_findings.py (the quoted numbers, from the shipped runs)",
}
NEEDS_A_MACHINE = ("cuda", "--device-map", "/models/", "--num-gpus", "--ray-address", "make test", "make demo",
                   "workbench app")

# Per page: Python run after its blocks, in their namespace (sql_results: the SQL blocks' frames, in order).
CHECKS = {
    "index.md": """
assert abs(load.fraction.sum() - 1) < 1e-9 and set(load.layer) == {3} and len(load) == 128
assert figure.data
""",
    "install.md": "",  # `workbench doctor` exits 1 when any family's site does not resolve or its logits move
    "guides/tracing.md": """
import workbench as wb
from pathlib import Path
runs = wb.open("traces/demo").runs
assert runs.tokens.tolist() == [4781, 12], runs  # the demo prompts, then the one text (with the nano's <bos>)
assert (Path("datasets/mine") / "README.md").is_file() and (Path("datasets/mine") / "routing").is_dir()
""",
    "tutorials/routing.md": """
assert balance.unused.tolist()[0] == 23 and balance.cv.round(2).tolist()[0] == 1.49
assert round(balance.max_over_mean.min(), 1) == 5.2 and round(balance.max_over_mean.max(), 1) == 7.1
medians = [round(float(x), 2) for x in entropy.p50]  # float32 column
assert medians[0] == 4.73 and medians[6:8] == [4.27, 4.12]
assert (round(js_trained.js_bits.mean(), 3), round(js_random.js_bits.mean(), 3)) == (0.443, 0.143)
assert mine.manifest["num_tokens"] == 4781 and "routing" in mine.tables
assert traced.prompts.id.tolist() == ["text-0", "text-1"]
assert routing.topk_ids.shape[0] == 8 and routing.topk_ids.shape[-1] == 8  # 8 MoE layers, top-8
slots = sql_results[0].groupby("layer").n.sum()  # every trunk layer: k = 8 slots per token of the three routing runs
assert (slots[slots.index < 8] == (4781 + 2 * 9133 + 2056) * 8).all() and slots[8] == 4769 * 8  # 8: the MTP rows
""",
    "tutorials/deltanet.md": """
best = longest.set_index("layer").half_life
assert round(best[5], 1) == 24.2 and best.drop(5).max() < 0.55
cos = sql_results[0].set_index("layer").retention_cos
assert cos.min() == -0.104 and cos.max() == 0.197
assert {"deltanet_heads", "state_snapshots"} <= set(run.tables) and len(spectra) > 0
""",
    "tutorials/attention.md": """
top = mass.sort_values("mass").iloc[-1]
assert (top["layer"], top["head"], round(top["mass"], 3)) == (3, 0, 0.387)
needle = dict(zip(sql_results[0].seq_id, sql_results[0].needle_mass))
assert needle["passkey_1024-s0-0000"] == needle["passkey_1024-s0-0001"] == 1.0
best = scores.iloc[0]
assert (best["layer"], best["head"]) == (3, 0) and best["score"] >= 0.9  # the nano's retrieval head
assert "attention" in run.tables
""",
    "tutorials/long-context.md": """
assert grid.loc[0.0, 2048] == 1 and grid.loc[0.0, 4096] == 0 and grid.loc[1.0, 8192] == 1 and grid.loc[0.5, 8192] == 0
attention = by_layer[by_layer.measure == "needle mass, max head"].set_index("layer").value
assert round(attention[3], 3) == 0.387 and round(attention[7], 3) == 0.020
assert set(long_context.runs.name) == {"needle_sweep", "state_capacity", "layer_ablation"}
assert len(small) > 0
""",
    "tutorials/sparsity.md": """
top = saliency.sort_values("reap").iloc[-1]
assert top["expert"] == 4 and round(top["reap"], 1) == 19.8 and round(saliency.reap.median(), 2) == 0.48
assert shared.share_mean.round(2).tolist()[0] == 0.34
assert js.groupby("model").js_bits.mean().round(3).to_dict() == {"random_init": 0.143, "trained": 0.443}
half = curves[curves.fraction == 0.5].set_index("criterion")
assert round(half.accuracy["reap"], 3) == round(half.accuracy["frequency"], 3) == 0.943
assert round(half.loss["reap"] - 2.610, 3) == 0.017
assert {"routing_specialization", "expert_pruning"} <= set(sparsity.runs.name) and len(small) > 0
""",
    "tutorials/mtp.md": """
accepted = by_label.set_index("label").accepted
assert round(accepted["code"], 2) == 0.81 and round(accepted["assoc_recall"], 2) == 0.39
assert round(overlap.set_index("layer").jaccard[7], 3) == 0.373 and overlap[overlap.layer < 7].jaccard.max() < 0.032
assert sql_results[0].set_index("label").acceptance.round(3).to_dict() == accepted.round(3).to_dict()
assert "mtp_acceptance" in set(mtp.runs.name) or len(mtp.runs) == 2
""",
    "tutorials/ray.md": """
assert same and on_ray.manifest["num_tokens"] == local.manifest["num_tokens"] == 4781
""",
    "developing/adding-a-family.md": """
from workbench.adapters import get_adapter
assert get_adapter("qwen2_moe").router.scoring == "softmax"
""",
}


def _all_blocks():
    return [b for page in pages() for b in blocks(page)]


def test_every_block_runs_or_says_why_not():
    for block in _all_blocks():
        assert block.language in RUNNABLE + NOT_CODE, f"{block.where}: fence language {block.language!r}"
        if block.title.startswith(SKIP):
            assert len(block.title) > len(SKIP) + 3, f"{block.where}: say why the block is not run"
        elif block.language in RUNNABLE:
            found = [word for word in NEEDS_A_MACHINE if word in block.code]
            assert not found, f"{block.where} mentions {found}: mark it title=\"{SKIP} <why>\" or make it run here"


def test_every_tutorial_has_blocks_that_run():
    for page in pages():
        if page.startswith("tutorials/") and page not in ("tutorials/gpu.md", *DEDICATED):
            assert any(b.language in RUNNABLE and not b.skipped for b in blocks(page)), page
    assert all(any(not b.skipped for b in blocks(page)) for page in DEDICATED)


RUN_PAGES = [p for p in pages() if p not in DEDICATED and any(b.language in RUNNABLE and not b.skipped
                                                                for b in blocks(p))]


def test_every_page_that_runs_has_its_checks():
    assert set(RUN_PAGES) == set(CHECKS), set(RUN_PAGES) ^ set(CHECKS)


@pytest.mark.docs
@pytest.mark.parametrize("page", RUN_PAGES)
def test_page_blocks_run(page, tmp_path):
    done = run_page(page, scratch_folder(tmp_path / "work"), CHECKS[page])
    assert done.returncode == 0, f"{page}\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
