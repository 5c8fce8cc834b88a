"""A synthetic routing trace at real-model scale for the dashboard benchmark (no model involved).

`write_synthetic_trace(out, rows=10_000_000, experts=512, k=10, layers=48, labels=5)` writes one committed run
through TraceWriter (the real format): tokens rows for every position, routing rows for every (token, layer).
Experts are drawn with a per-layer and per-label skew so that balance, label divergence and co-activation have
something to find.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from workbench.trace import TraceWriter


def write_synthetic_trace(out, rows: int = 10_000_000, experts: int = 512, k: int = 10, layers: int = 48,
                          labels: int = 5, seq_len: int = 2048, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    tokens_total = math.ceil(rows / layers)
    sequences = math.ceil(tokens_total / seq_len)
    offsets_pool = np.stack([rng.choice(np.arange(1, experts), k - 1, replace=False) for _ in range(64)])  # [64, k-1]
    label_names = [f"domain-{i}" for i in range(labels)]
    prompts = []
    with TraceWriter(out, rows_per_part=2_000_000) as writer:
        for s in range(sequences):
            n = min(seq_len, tokens_total - s * seq_len)
            seq_id, label = f"seq-{s:05d}", s % labels
            prompts.append({"id": seq_id, "label": label_names[label]})
            positions = np.arange(n, dtype=np.int32)
            token_ids = rng.integers(0, 32000, n).astype(np.int32)
            writer.add("tokens", pa.table({"seq_id": [seq_id] * n, "position": positions, "token_id": token_ids,
                                           "token": [f"t{t}" for t in token_ids], "label": [label_names[label]] * n}))
            layer = np.repeat(np.arange(layers, dtype=np.int16), n)  # [layers * n]
            m = layers * n
            # top-1 expert: token-dependent plus a per-(layer, label) hot spot, so loads are skewed
            top1 = (token_ids[np.tile(np.arange(n), layers)] * 7 + layer.astype(np.int64) * 31) % experts
            hot = rng.random(m) < 0.3
            top1[hot] = (layer[hot].astype(np.int64) * 13 + label * 101 + rng.integers(0, 8, hot.sum())) % experts
            ids = (top1[:, None] + np.concatenate([np.zeros((m, 1), np.int64),
                                                    offsets_pool[rng.integers(0, 64, m)]], axis=1)) % experts
            weights = rng.dirichlet(np.ones(k), m).astype(np.float16)
            weights = -np.sort(-weights, axis=1)
            flat = pa.array(ids.reshape(-1).astype(np.uint16))
            list_offsets = pa.array(np.arange(m + 1, dtype=np.int32) * k)
            writer.add("routing", pa.table({
                "seq_id": pa.array([seq_id] * m), "position": np.tile(positions, layers), "layer": layer,
                "topk_ids": pa.ListArray.from_arrays(list_offsets, flat),
                "topk_weights": pa.ListArray.from_arrays(list_offsets, pa.array(weights.reshape(-1))),
                "router_entropy": rng.uniform(1.0, math.log(experts), m).astype(np.float16),
                "topk_mass": rng.uniform(0.2, 1.0, m).astype(np.float16),
                "topk_margin": rng.exponential(0.01, m).astype(np.float16),
                "shared_gate": rng.uniform(0, 1, m).astype(np.float16),
            }))
        path = writer.commit({
            "model": {"source": "synthetic", "architecture": "synthetic", "config_hash": "synthetic",
                      "config": {"num_experts": experts, "num_experts_per_tok": k}},
            "prompts": prompts, "num_tokens": int(tokens_total), "layer_kinds": ["linear_attention"] * layers,
            "moe_layers": list(range(layers)), "capture": {"synthetic": True},
        })
    return path.stem
