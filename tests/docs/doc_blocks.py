"""The code blocks of the docs pages, and a runner that executes one page's blocks in order in a scratch folder.

A fenced block's info string is its language and, optionally, a title: ```bash title="...". A block whose title
starts with SKIP ("Not run by the tests: <why>") is shown to readers with that title and skipped by the tests.
Runnable languages: python (one namespace per page), bash (`bash -e -o pipefail`, with the test's `python` and
`workbench` first on PATH), sql (over the shipped dataset, datasets/nano; it must return rows).

Run as a script (`python doc_blocks.py STEPS.json`), it executes the steps written by `run_page` in the current
folder, then the page's check code in the same namespace (with `sql_results`, the SQL blocks' DataFrames).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SKIP = "Not run by the tests:"
RUNNABLE = ("python", "bash", "sql")
NOT_CODE = ("text", "markdown")
FENCE = re.compile(r"^(`{3,})\s*([A-Za-z]*)\s*(.*)$")
TITLE = re.compile(r'^title="([^"]*)"$')


@dataclass(frozen=True)
class Block:
    page: str  # relative to docs/
    line: int  # of the opening fence, 1-based
    language: str
    title: str
    code: str

    @property
    def skipped(self) -> bool:
        return self.title.startswith(SKIP)

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def pages() -> list[str]:
    """Every Markdown page of the site (docs/hooks/ holds the build hook, not pages)."""
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


def blocks(page: str) -> list[Block]:
    """The page's top-level fenced blocks (a fence closes on a fence of at least as many backticks)."""
    found, lines = [], (DOCS / page).read_text().splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        ticks, language, rest = match.groups()
        title = TITLE.match(rest.strip())
        end = index + 1
        while end < len(lines) and not (lines[end].startswith(ticks) and lines[end].strip("`") == ""):
            end += 1
        found.append(Block(page, index + 1, language, title.group(1) if title else rest.strip(),
                           "\n".join(lines[index + 1:end]) + "\n"))
        index = end + 1
    return found


def scratch_folder(path: Path) -> Path:
    """A working folder with links to the shipped dataset, prompts and probes: blocks write traces/ here, never into
    the repository."""
    (path / "datasets").mkdir(parents=True)
    for name in ("nano", "prompts"):
        (path / "datasets" / name).symlink_to(ROOT / "datasets" / name)
    (path / "probes").symlink_to(ROOT / "probes")
    return path


def environment() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TQDM_DISABLE", "1")
    return env


def run_page(page: str, folder: Path, check: str = "", timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the page's runnable blocks, then `check`, in a fresh interpreter whose working folder is `folder`."""
    steps = [{"language": b.language, "code": b.code, "where": b.where}
             for b in blocks(page) if b.language in RUNNABLE and not b.skipped]
    (folder / "steps.json").write_text(json.dumps({"steps": steps, "check": check}))
    return subprocess.run([sys.executable, __file__, "steps.json"], cwd=folder, env=environment(),
                          capture_output=True, text=True, timeout=timeout)


def _execute(steps_file: str) -> None:
    spec = json.loads(Path(steps_file).read_text())
    namespace: dict = {"sql_results": []}
    for step in spec["steps"]:
        started = time.perf_counter()
        print(f"== {step['where']} ({step['language']})", flush=True)
        if step["language"] == "python":
            exec(compile(step["code"], step["where"], "exec"), namespace)  # noqa: S102
        elif step["language"] == "bash":
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["code"]], capture_output=True, text=True)
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", flush=True)
            if done.returncode:
                raise SystemExit(f"{step['where']}: bash exited with {done.returncode}")
        else:
            from workbench.trace import open_trace

            result = open_trace("datasets/nano").duckdb().execute(step["code"]).df()
            if result.empty:
                raise SystemExit(f"{step['where']}: the SQL block returned no rows on datasets/nano")
            namespace["sql_results"].append(result)
        print(f"== {step['where']}: {time.perf_counter() - started:.1f} s", flush=True)
    print("== checks", flush=True)
    exec(compile(spec["check"], "checks", "exec"), namespace)  # noqa: S102


if __name__ == "__main__":
    _execute(sys.argv[1])
