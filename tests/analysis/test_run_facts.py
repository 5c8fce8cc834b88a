"""A run's facts for the pages (analysis/facts.py): as written by a trace, and derived for runs written before the
manifest carried them (the shipped nano runs), against the nano's config values copied by hand."""

import json
from pathlib import Path

from workbench.analysis.facts import run_facts

ROOT = Path(__file__).resolve().parents[2]
NANO_LABELS = ["L0 DeltaNet", "L1 DeltaNet", "L2 DeltaNet", "L3 attention",
               "L4 DeltaNet", "L5 DeltaNet", "L6 DeltaNet", "L7 attention"]


def test_a_run_written_before_the_facts_gets_them_derived():
    manifests = [json.loads(p.read_text()) for p in sorted((ROOT / "datasets/nano/runs").glob("*.json"))]
    old = [m for m in manifests if "heads" not in m and m.get("moe_layers")]
    assert old  # the shipped runs predate the facts
    for manifest in old:
        facts = run_facts(manifest)
        assert (facts.num_experts, facts.top_k) == (128, 8)  # the nano: 128 experts, top-8
        assert facts.heads == {"full_attention": {"query": 4, "key_value": 2},
                               "linear_attention": {"key": 4, "value": 8}}
        assert facts.max_heads == 8
        mtp = ["MTP"] if manifest["capture"].get("mtp") else []
        assert facts.layer_labels == NANO_LABELS + mtp
        assert facts.label(3) == "L3 attention" and facts.label(12) == "L12"


def test_a_run_with_the_facts_is_read_as_written():
    manifest = {"layer_kinds": ["full_attention"], "layer_labels": ["L0 attention", "MTP"], "num_experts": 16,
                "top_k": 2, "heads": {"full_attention": {"query": 6, "key_value": 2}},
                "model": {"config": {"num_experts": 999, "num_attention_heads": 999}}}
    facts = run_facts(manifest)
    assert (facts.num_experts, facts.top_k, facts.max_heads, facts.label(1)) == (16, 2, 6, "MTP")
