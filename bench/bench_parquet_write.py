"""Parquet encoding speed of trace rows on this machine: one routing table of --rows rows (random top-k ids and
weights, as the nano's k = 8 of E = 128) written with the writer's settings and a few others, by 1..N threads at
once (each its own copy of the file), so the figures say what the TraceWriter's pool can sustain.

    python bench/bench_parquet_write.py --rows 262144 --threads 1 4 8 16
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.trace.schema import file_schema
from workbench.trace.writer import COMPRESSION


def routing_rows(rows: int, k: int, experts: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    schema = file_schema("routing")

    def lists(values, field):
        return pa.ListArray.from_arrays(pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32)),
                                        pa.array(values.reshape(-1), type=schema.field(field).type.value_type))

    half = lambda: rng.random(rows).astype(np.float16)  # noqa: E731
    return pa.Table.from_arrays([
        pa.repeat(pa.scalar("20261202T000000Z-abcdef12"), rows),
        pa.array(np.repeat([f"p{i}" for i in range(rows // 2048 + 1)], 2048)[:rows]),
        pa.array(np.tile(np.arange(2048, dtype=np.int32), rows // 2048 + 1)[:rows]),
        pa.array(np.repeat(np.arange(8, dtype=np.int16), rows // 8 + 1)[:rows]),
        lists(rng.integers(0, experts, (rows, k)).astype(np.uint16), "topk_ids"),
        lists(rng.random((rows, k)).astype(np.float16), "topk_weights"),
        pa.array(half()), pa.array(half()), pa.array(half()), pa.array(half()),
    ], schema=schema)


VARIANTS = {
    "writer (zstd 3, string dictionaries)": dict(COMPRESSION, use_dictionary=["run_id", "seq_id"]),
    "zstd 9, all dictionaries (before)": dict(compression="zstd", compression_level=9),
    "lz4, string dictionaries": dict(compression="lz4", use_dictionary=["run_id", "seq_id"]),
    "no compression, string dictionaries": dict(compression="none", use_dictionary=["run_id", "seq_id"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8, 16])
    args = parser.parse_args()
    table = routing_rows(args.rows, 8, 128)
    folder = Path(tempfile.mkdtemp(prefix="bench-parquet-"))
    print(f"{os.cpu_count()} cpus; {args.rows:,} routing rows, {table.nbytes / 1e6:.1f} MB in memory")
    for name, options in VARIANTS.items():
        for threads in args.threads:
            def write(i):
                pq.write_table(table, folder / f"{i}.parquet", **options)
            write(0)  # warm
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(write, range(threads)))
            seconds = time.perf_counter() - start
            size = (folder / "0.parquet").stat().st_size
            print(json.dumps({"variant": name, "threads": threads, "wall_s": round(seconds, 3),
                              "us_per_row_per_thread": round(1e6 * seconds / args.rows, 3),
                              "rows_per_s_all_threads": round(threads * args.rows / seconds),
                              "bytes_per_row": round(size / args.rows, 2)}))


if __name__ == "__main__":
    main()
