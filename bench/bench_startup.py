"""Start-up of the `workbench` command, end to end as a user runs it (targets: `workbench --help` < 1 s,
`workbench trace --model nano --text ...` < 5 s on the 2-core CPU box).

    python bench/bench_startup.py [--reps 3]

Prints each command's wall time per repetition and the median, and the machine's load average (timings on a shared
box move with it). Each trace writes a fresh folder under a temporary directory."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def workbench_command() -> list[str]:
    script = Path(sys.executable).with_name("workbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "workbench.cli"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--text", default="the pass key is 12345 . what is the pass key ?")
    args = parser.parse_args()
    base = workbench_command()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"({os.cpu_count()} cores)")
    folder = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        cases = {
            "workbench --help": lambda i: base + ["--help"],
            "workbench trace --model nano --text ...": lambda i: base + ["trace", "--model", "nano", "--text", args.text,
                                                                          "--out", str(folder / f"t{i}")],
        }
        timed(base + ["--help"])  # warm the file cache once
        for name, command in cases.items():
            times = [timed(command(i)) for i in range(args.reps)]
            print(f"{name}: " + ", ".join(f"{t:.2f}" for t in times) + f" s; median {statistics.median(times):.2f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
