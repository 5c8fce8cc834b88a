"""The attribution tutorial's findings (docs/tutorials/attribution.md) are the shipped dataset's numbers, recomputed here with the same
analysis functions the Attribution page uses."""

from pathlib import Path

from workbench.analysis.attribution import attributed_positions, contributions_by_group, patching_grid, top_components
from workbench.analysis.db import Scope, TraceDB

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_quote_the_shipped_attribution_and_patching_runs():
    section = " ".join((ROOT / "docs" / "tutorials" / "attribution.md").read_text().split())
    db = TraceDB(ROOT / "datasets" / "nano")
    manifests = db.trace.manifests()
    attribution = Scope([m["run_id"] for m in manifests if "logit_attribution" in m.get("tables", [])][-1])
    patching = [m for m in manifests if "patching" in m.get("tables", [])][-1]
    assert patching["model"]["dtype"] in ("float32", "torch.float32")
    groups = contributions_by_group(db, attribution).set_index("group")
    mean_logit = attributed_positions(db, attribution).model_logit.mean()
    assert f"mean logit of {mean_logit:.2f}" in section
    for group, words in (("routed experts", "routed experts write"), ("attention", "attention"),
                         ("shared expert", "the shared experts")):
        value, share = groups.value[group], groups.share[group]
        assert f"{words} {value:.2f} ({share:.1%})" in section, (group, value, share)
    head = top_components(db, attribution, "head", 1).iloc[0]
    assert (head.layer, head["index"]) == (3, 0) and f"({head.value:.2f} logits)" in section
    expert = top_components(db, attribution, "expert", 1).iloc[0]
    assert f"(expert {expert['index']}: {expert.value:.2f} logits on the {expert.positions} positions" in section
    scope = Scope(patching["run_id"])
    mixers = patching_grid(db, scope, "mixer").set_index(["layer", "range"]).recovery
    heads = patching_grid(db, scope, "head").set_index(["layer", "head"]).recovery
    assert f"recovers {mixers[(3, 'last')]:.3f} of the clean logit difference" in section
    assert f"its head 0 alone {heads[(3, 0)]:.3f}" in section
    assert f"every other layer and range at most {mixers.drop((3, 'last')).max():.3f}" in section
    assert patching_grid(db, scope, "state").recovery.abs().max() < 0.0002 + 5e-5
    forwards = patching["probe"]["forwards"]
    assert (f"{forwards['clean']} clean and {forwards['corrupted']} corrupted forwards, {forwards['patched']} patched"
            in section and f"{forwards['clean_prefixes']} clean prefixes" in section)
