"""A small trace written by hand (no model) whose every aggregate can be computed on paper: the fixture the
analysis, app and docs (Reading traces) tests share. Numbers the tests assert are worked out in tests/analysis/test_*.py.

Run A ("run-a"), 2 sequences, MoE layers 0 and 2 (E = 4, k = 2), DeltaNet layer 1, attention layer 3 (2 heads):
  s0 (label x): tokens 5 6 5      routing L0 [0,1] [0,2] [1,0]   L2 [2,3] [2,3] [2,1]
  s1 (label y): tokens 5 7        routing L0 [0,3] [3,2]         L2 [1,2] [0,3]
  router_entropy at L0: s0 1 2 3, s1 4 5; weights always [0.75, 0.25]
Run B ("run-b"): s0 only, same tokens, L0 [0,1] [2,0] [1,3], L2 [2,3] [3,2] [0,1]; DeltaNet layer 1 state norms
  1.5 2 2 (run A: 1 2 3).
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from workbench.trace import TraceWriter

TOKENS = {"s0": ([5, 6, 5], "x"), "s1": ([5, 7], "y")}
ROUTING_A = {0: {"s0": [[0, 1], [0, 2], [1, 0]], "s1": [[0, 3], [3, 2]]},
             2: {"s0": [[2, 3], [2, 3], [2, 1]], "s1": [[1, 2], [0, 3]]}}
ROUTING_B = {0: {"s0": [[0, 1], [2, 0], [1, 3]]}, 2: {"s0": [[2, 3], [3, 2], [0, 1]]}}
ENTROPY = {"s0": [1.0, 2.0, 3.0], "s1": [4.0, 5.0]}


def _manifest(seqs):
    return {"model": {"source": "hand", "architecture": "Qwen3NextForCausalLM", "config_hash": "hand",
                      "config": {"num_experts": 4, "num_experts_per_tok": 2}},
            "prompts": [{"id": s, "label": TOKENS[s][1], "text": " ".join(f"w{t}" for t in TOKENS[s][0])}
                        for s in seqs],
            "num_tokens": sum(len(TOKENS[s][0]) for s in seqs),
            "layer_kinds": ["linear_attention", "linear_attention", "linear_attention", "full_attention"],
            "moe_layers": [0, 2], "capture": {"hand": True}}


def _add_run(writer, routing, seqs, extras: bool):
    for seq in seqs:
        ids, label = TOKENS[seq]
        n = len(ids)
        writer.add("tokens", pa.table({"seq_id": [seq] * n, "position": list(range(n)), "token_id": ids,
                                       "token": [f"w{t}" for t in ids], "label": [label] * n}))
        for layer, rows in routing.items():
            experts = rows[seq]
            writer.add("routing", pa.table({
                "seq_id": [seq] * n, "position": list(range(n)), "layer": [layer] * n, "topk_ids": experts,
                "topk_weights": [[0.75, 0.25]] * n,
                "router_entropy": ENTROPY[seq] if layer == 0 else [1.0] * n,
                "topk_mass": [0.5] * n, "topk_margin": [0.125] * n, "shared_gate": [0.5] * n}))
        if not extras:
            continue
        _add_mtp(writer, seq)
        writer.add("deltanet", pa.table({
            "seq_id": [seq] * n, "position": list(range(n)), "layer": [1] * n,
            "state_norm_mean": [1.0, 2.0, 3.0][:n], "state_norm_max": [2.0, 3.0, 4.0][:n],
            "decay_mean": [0.5, 0.75, 1.0][:n], "log_decay_min": [-0.6931472] * n, "beta_mean": [0.25] * n, "beta_max": [0.5] * n,
            "half_life_mean": [1.0, 2.0, 4.0][:n], "half_life_max": [8.0] * n}))
        writer.add("deltanet_heads", pa.table({
            "seq_id": [seq] * n, "position": list(range(n)), "layer": [1] * n,
            "state_norm": [[1.0, 3.0]] * n, "log_decay": [[-0.6931472, 0.0]] * n, "beta": [[0.25, 0.25]] * n,
            "half_life": [[1.0, 4.0]] * n}))
        writer.add("deltanet_head_summary", pa.table({
            "seq_id": [seq] * 2, "layer": [1, 1], "head": [0, 1], "tokens": [n, n],
            "state_norm_mean": [1.0, 3.0] if seq == "s0" else [2.0, 4.0], "state_norm_max": [2.0, 4.0],
            "decay_mean": [0.5, 0.9], "beta_mean": [0.25, 0.5],
            "log_decay_mean": [-0.5, -0.1] if seq == "s0" else [-1.0, -0.1], "half_life": [1.0, 7.0]}))
        writer.add("state_recall", pa.table({
            "seq_id": [seq] * n, "layer": [1] * n, "pair": [0] * n, "key_pos": [0] * n, "value_pos": [0] * n,
            "position": list(range(n)), "rel_err_mean": [0.0, 0.5, 1.0][:n], "rel_err_min": [0.0] * n,
            "cos_mean": [1.0, 0.5, 0.0][:n], "cos_max": [1.0] * n, "rel_err": [[0.0, 0.0]] * n, "cos": [[1.0, 1.0]] * n,
            "retention_cos_mean": [1.0, 0.75, 0.5][:n], "retention_ratio_mean": [1.0, 0.5, 0.25][:n],
            "retention_cos": [[1.0, 1.0]] * n, "retention_ratio": [[1.0, 1.0]] * n}))
        writer.add("state_snapshots", pa.table({
            "seq_id": [seq] * 2, "layer": [1, 1], "position": [n - 1] * 2, "head": [0, 1], "eff_rank": [1.5, 2.5],
            "top_sv": [1.0, 2.0]}))
        writer.add("spans", pa.table({
            "seq_id": [seq] * 2, "span": ["needle", "question"], "start_char": [0, 3], "end_char": [2, 5],
            "start_token": [0, 1], "end_token": [1, 2], "query": [False, True]}))
        # attention layer 3, heads 0, 1 at every position: needle mass 0.9 before the needle ends (position 0)
        positions = [p for p in range(n) for _ in range(2)]
        heads = [0, 1] * n
        needle = {0: [0.9, 0.9], 1: [0.2, 0.4], 2: [0.6, 0.8]}
        masses = [needle[p][h] for p, h in zip(positions, heads)]
        writer.add("attention", pa.table({
            "seq_id": [seq] * (2 * n), "position": positions, "layer": [3] * (2 * n), "head": heads,
            "span_mass": [[{"span": "needle", "mass": m}, {"span": "question", "mass": 0.0}] for m in masses],
            "topk_positions": [[0, -1] if p == 0 else [0, p] for p in positions],
            "topk_weights": [[1.0, 0.0] if p == 0 else [m, 1 - m] for p, m in zip(positions, masses)],
            "entropy": [0.5] * (2 * n), "sink_mass": [0.25 if h == 0 else 0.75 for h in heads],
            "mean_distance": [float(p) for p in positions]}))
        writer.add("attention_gate", pa.table({
            "seq_id": [seq] * n, "position": list(range(n)), "layer": [3] * n, "gate_mean": [0.5] * n,
            "gate_low_fraction": [0.25] * n, "head_gate_mean": [[0.25, 0.75]] * n,
            "head_gate_low_fraction": [[0.5, 0.0]] * n}))
        writer.add("retrieval", pa.table({
            "seq_id": [seq] * 2, "layer": [3, 3], "head": [0, 1], "steps": [4, 4],
            "hits": [4, 1] if seq == "s0" else [2, 1], "score": [1.0, 0.25] if seq == "s0" else [0.5, 0.25]}))
    if extras:
        # needle sweep: lengths 64, 128 x depths 0, 0.5; DeltaNet layer 1 (no head), attention layer 3 heads 0, 1
        rows = []
        for length in (64, 128):
            for depth in (0.0, 0.5):
                correct = 1.0 if length == 64 else 0.5
                rows.append({"context_length": length, "needle_depth": depth, "layer": 1,
                             "layer_kind": "linear_attention", "head": None, "prompts": 2, "exact_match": correct,
                             "needle_mass": None, "deltanet_needle_contribution": 0.25,
                             "state_retention": 1.0 - depth, "state_retention_ratio": 0.5})
                for head in (0, 1):
                    rows.append({"context_length": length, "needle_depth": depth, "layer": 3,
                                 "layer_kind": "full_attention", "head": head, "prompts": 2, "exact_match": correct,
                                 "needle_mass": 0.5 * head + depth, "deltanet_needle_contribution": None,
                                 "state_retention": None, "state_retention_ratio": None})
        writer.add("needle_sweep", pa.Table.from_pylist(rows))
        # DeltaNet needle contribution, layer 1, s0 position 2, heads 0 and 1: norm ratios 0.5 / 0.25, projections
        # 0.4 / 0.2 (mean over heads 0.375 / 0.3)
        writer.add("deltanet_contribution", pa.table({
            "seq_id": ["s0"] * 2, "position": [2, 2], "layer": [1, 1], "head": [0, 1],
            "span_norm_ratio": [[{"span": "needle", "share": 0.5}], [{"span": "needle", "share": 0.25}]],
            "span_projection": [[{"span": "needle", "share": 0.4}], [{"span": "needle", "share": 0.2}]],
            "rest_norm_ratio": [0.75, 1.0], "rest_projection": [0.6, 0.8], "output_norm": [2.0, 1.0]}))
        # state capacity, DeltaNet layer 1: 2 pairs back to back, retention 1.0 (last key) and 0.5 (one after it)
        writer.add("state_capacity", pa.table({
            "pairs": [2, 2], "context_length": [0, 0], "layer": [1, 1], "keys_after": [0, 1], "prompts": [2, 2],
            "accuracy": [0.5, 0.5], "retention_cos": [1.0, 0.75], "retention_ratio": [1.0, 0.5],
            "recall_cos": [0.5, 0.25]}))
        # layer ablation (an intervention): passkey 1.0 unmodified, 0.25 with every attention layer zeroed
        writer.add("layer_ablation", pa.Table.from_pylist([
            {"intervention": "ablation", "condition": "none", "mode": None, "layers": [], "layer_kind": None,
             "suite": "passkey", "context_length": 64, "prompts": 4, "exact_match": 1.0, "accuracy_drop": 0.0},
            {"intervention": "ablation", "condition": "all full_attention", "mode": "zero", "layers": [3],
             "layer_kind": "full_attention", "suite": "passkey", "context_length": 64, "prompts": 4,
             "exact_match": 0.25, "accuracy_drop": 0.75}]))


def write_hand_trace(root, skip: tuple[str, ...] = ()) -> dict:
    """Write runs A (every table) and B (tokens, routing) into `root`; tables named in `skip` are left out.
    Returns {"a": run_id, "b": run_id}."""
    class Skipping:
        def __init__(self, writer):
            self.writer = writer

        def add(self, table, data):
            if table not in skip:
                self.writer.add(table, data)

    with TraceWriter(root, run_id="20260101T000000Z-aaaaaaaa") as writer:
        _add_run(Skipping(writer), ROUTING_A, ["s0", "s1"], extras=True)
        writer.commit(_manifest(["s0", "s1"]))
    with TraceWriter(root, run_id="20260101T000001Z-bbbbbbbb") as writer:
        _add_run(Skipping(writer), ROUTING_B, ["s0"], extras=False)
        Skipping(writer).add("deltanet", pa.table({  # s0 state norms 1.5 2 2 against run A's 1 2 3
            "seq_id": ["s0"] * 3, "position": [0, 1, 2], "layer": [1] * 3, "state_norm_mean": [1.5, 2.0, 2.0],
            "state_norm_max": [2.0] * 3, "decay_mean": [0.5] * 3, "log_decay_min": [-0.6931472] * 3, "beta_mean": [0.25] * 3,
            "beta_max": [0.5] * 3, "half_life_mean": [1.0] * 3, "half_life_max": [8.0] * 3}))
        writer.commit(_manifest(["s0"]))
    return {"a": "20260101T000000Z-aaaaaaaa", "b": "20260101T000001Z-bbbbbbbb"}


@pytest.fixture(scope="session")
def hand_trace(tmp_path_factory):
    """(path, {"a": run_id, "b": run_id}) of the hand-written trace."""
    root = tmp_path_factory.mktemp("hand") / "trace"
    return root, write_hand_trace(root)


@pytest.fixture(scope="module")
def db(hand_trace):
    """A DuckDB TraceDB over the hand-written trace (one per test module)."""
    from workbench.analysis.db import TraceDB

    return TraceDB(hand_trace[0])


@pytest.fixture(scope="module")
def scope(hand_trace):
    """Run A of the hand-written trace, every layer, label, sequence and position."""
    from workbench.analysis.db import Scope

    return Scope(hand_trace[1]["a"])


# MTP: run A also holds the `mtp` table below; `write_mtp_trace` writes a folder of its own (so run A's routing
# aggregates stay as above) with run A's tokens and routing plus the MTP layer's routing under layer 4
# (= num_hidden_layers) and the `mtp` table, rows t = 0 .. T-2:
#   s0: MTP experts [0,1] [2,3]; accepted T F; draft_correct T, null; p_accepted 0.8 0.2
#   s1: MTP experts [1,2];       accepted T;   draft_correct null;    p_accepted 0.6
MTP_ROUTING = {"s0": [[0, 1], [2, 3]], "s1": [[1, 2]]}
MTP_ROWS = {"s0": ([True, False], [True, None], [0.8, 0.2]), "s1": ([True], [None], [0.6])}


def _add_mtp(writer, seq: str) -> None:
    accepted, correct, p = MTP_ROWS[seq]
    n = len(accepted)
    writer.add("mtp", pa.table({
        "seq_id": [seq] * n, "position": list(range(n)), "draft_token_id": [9] * n, "trunk_token_id": [9] * n,
        "accepted": accepted, "draft_correct": pa.array(correct, type=pa.bool_()), "p_accepted": p}))


def write_mtp_trace(root) -> str:
    run_id = "20260101T000002Z-cccccccc"
    with TraceWriter(root, run_id=run_id) as writer:
        _add_run(writer, ROUTING_A, ["s0", "s1"], extras=False)
        for seq, experts in MTP_ROUTING.items():
            n = len(experts)
            writer.add("routing", pa.table({
                "seq_id": [seq] * n, "position": list(range(n)), "layer": [4] * n, "topk_ids": experts,
                "topk_weights": [[0.75, 0.25]] * n, "router_entropy": [1.0] * n, "topk_mass": [0.5] * n,
                "topk_margin": [0.125] * n, "shared_gate": [0.5] * n}))
            _add_mtp(writer, seq)
        manifest = _manifest(["s0", "s1"])
        manifest["model"]["config"]["num_hidden_layers"] = 4
        writer.commit(manifest)
    return run_id
