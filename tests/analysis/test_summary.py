"""`workbench info` (analysis/summary.py): labelled, wrapped at 100 characters, plurals right, dtype and device from
the manifest; checked line by line against the hand trace and a one-run folder written here."""

import pyarrow as pa

from workbench.analysis.summary import capture_text, counted, trace_summary
from workbench.trace import TraceWriter, open_trace


def test_counted_plurals():
    assert [counted(1, "run"), counted(2, "run"), counted(0, "sequence"), counted(4781, "token")] == [
        "1 run", "2 runs", "0 sequences", "4,781 tokens"]


def test_capture_text_keeps_the_options_of_kinds_that_were_on():
    capture = {"attention": True, "attention_stride": 64, "attention_topk": 8, "deltanet": False,
               "deltanet_path": "auto", "routing": True, "router_logits": False, "state_snapshots": []}
    assert capture_text(capture) == "attention (stride 64, topk 8), routing"
    assert capture_text({}) == "nothing"


def test_info_of_one_run_with_dtype_and_device(tmp_path):
    with TraceWriter(tmp_path / "t", run_id="20260101T000000Z-eeeeeeee") as writer:
        writer.add("tokens", pa.table({"seq_id": ["s"] * 3, "position": [0, 1, 2], "token_id": [1, 2, 3],
                                       "token": ["a", "b", "c"], "label": [None] * 3}))
        writer.commit({"model": {"source": "nano", "architecture": "Qwen3NextForCausalLM", "config_hash": "abc",
                                 "dtype": "bfloat16", "device": "cuda:0", "config": {}},
                       "prompts": [{"id": "s"}], "num_tokens": 3, "layer_kinds": ["full_attention"],
                       "moe_layers": [0], "capture": {"routing": True, "mtp": True}})
    trace = open_trace(tmp_path / "t")
    size = trace.size_bytes("tokens")
    lines = trace_summary(trace).splitlines()
    assert lines[0] == f"trace {trace.root}  (schema {trace.schema_version}, 1 run)"
    assert lines[2:8] == ["run 20260101T000000Z-eeeeeeee  trace",
                          "  model     nano (Qwen3NextForCausalLM, config abc)",
                          "  dtype     bfloat16 on cuda:0",
                          "  prompts   1 sequence, 3 tokens",
                          "  layers    1 layer (1 attention; 1 MoE) + the MTP layer",
                          "  capture   mtp, routing"]  # manifests store keys sorted
    kb = f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} B"
    assert lines[8].split() == ["tables", "rows", "on", "disk", "B/token"]
    assert lines[9].split() == ["tokens:", "3", *kb.split(), f"{size / 3:.1f}"]


def test_info_of_the_hand_trace_wraps_and_labels(hand_trace):
    path, runs = hand_trace
    text = trace_summary(open_trace(path))
    assert text.splitlines()[0].endswith(", 2 runs)")
    assert all(len(line) <= 100 for line in text.splitlines())
    run_b = text.split(f"run {runs['b']}")[1]
    assert "  dtype     not recorded" in run_b  # the hand manifests carry no dtype
    assert "  prompts   1 sequence, 3 tokens" in run_b
    assert "  capture   hand" in run_b
