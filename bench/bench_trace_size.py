"""Trace bytes on disk per token per MoE layer, for the routing table (and tokens), k=10 of 512 experts.

A random-init router spreads tokens almost uniformly, the hardest case for compression of expert ids.
Run: .venv/bin/python bench/bench_trace_size.py [--tokens 16384] [--experts 512] [--topk 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers: tests/support/
from support.toy import TINY_DIMS, build_model, byte_tokenizer, qwen3_next_config  # noqa: E402

from workbench.adapters import get_adapter  # noqa: E402
from workbench.loading import LoadedModel  # noqa: E402
from workbench.inputs.prompts import Prompt  # noqa: E402
from workbench.trace import open_trace  # noqa: E402
from workbench.tracing import trace_prompts  # noqa: E402


def column_bytes(files: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                name = column.path_in_schema.split(".")[0]
                sizes[name] = sizes.get(name, 0) + column.total_compressed_size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=16384, help="total tokens traced")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--experts", type=int, default=512)
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    tokenizer = byte_tokenizer()
    dims = dict(TINY_DIMS, num_experts=args.experts, num_experts_per_tok=args.topk, moe_intermediate_size=8)
    model = build_model(qwen3_next_config(args.layers, len(tokenizer), dims=dims), seed=0)
    loaded = LoadedModel(model, tokenizer, get_adapter("Qwen3NextForCausalLM"), "random", "memory", None)
    generator = torch.Generator().manual_seed(0)
    prompts = []
    for index in range(args.tokens // args.seq_len):
        codes = torch.randint(97, 123, (args.seq_len,), generator=generator).tolist()
        prompts.append(Prompt(f"s{index}", "".join(map(chr, codes))))
    with tempfile.TemporaryDirectory() as folder:
        trace_prompts(loaded, prompts, folder, progress=False)
        trace = open_trace(folder)
        tokens = trace.read("tokens").num_rows
        moe_layers = len(trace.manifests()[0]["moe_layers"])
        routing_bytes = trace.size_bytes("routing")
        print(f"E={args.experts} k={args.topk} layers={moe_layers} tokens={tokens}")
        print(f"routing: {routing_bytes} bytes = {routing_bytes / tokens / moe_layers:.2f} bytes/token/layer (limit 48)")
        print(f"tokens:  {trace.size_bytes('tokens') / tokens:.2f} bytes/token")
        for name, size in sorted(column_bytes(trace.files("routing")).items(), key=lambda kv: -kv[1]):
            print(f"  {name:15s} {size / tokens / moe_layers:6.2f} bytes/token/layer")


if __name__ == "__main__":
    main()
