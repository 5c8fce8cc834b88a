"""README is a front door: under 12 KB, the two commands first, every supported family and the tested transformers
range named, every link pointing at a file that exists, its Python running on the shipped dataset, and each of its
other commands run by a docs page's tested block (tests/docs/test_doc_examples.py)."""

import re
from pathlib import Path

import pytest

from workbench.adapters import registered_adapters
from workbench.adapters.upstream import TESTED_TRANSFORMERS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str, text: str) -> list[str]:
    return re.findall(rf"^```{language}[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_is_under_12_kb():
    assert len(README.encode()) < 12 * 1024, f"README.md is {len(README.encode())} bytes"


def test_readme_starts_with_the_two_commands():
    title, rest = README.split("\n", 1)
    assert title.startswith("# workbench")
    first = rest.lstrip("\n").split("\n```\n", 1)[0].splitlines()
    assert first[0] == "```bash" and first[1].startswith("make demo") and first[2].startswith("make test")


def test_readme_names_every_family_and_the_tested_range():
    for adapter in registered_adapters():
        if adapter.name != "qwen2_moe":  # the test family of tests/adapters/toy_family.py, when registered
            assert f"**{adapter.name}**" in README, adapter.name
    assert ",".join(TESTED_TRANSFORMERS) in README
    releases = next(l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("COMPAT_RELEASES ?="))
    assert all(release in README for release in releases.split("?=")[1].split())


def test_readme_links_point_at_existing_files():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert len(links) >= 20
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_readme_commands_are_run_by_a_docs_page():
    """Each command of README's tasks appears in a docs block that tests/docs/test_doc_examples.py runs (or, for the
    dashboard, one marked as serving it)."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "docs"))  # as pytest puts it there for tests/docs/test_*.py
    try:
        import doc_blocks
    finally:
        sys.path.remove(str(ROOT / "tests" / "docs"))
    tested = "\n".join(b.code for page in doc_blocks.pages() for b in doc_blocks.blocks(page) if b.language == "bash")
    for block in _blocks("bash", README)[1:]:
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                assert command in tested, f"README command not in any docs block: {command}"


def test_readme_python_runs_on_the_shipped_dataset(monkeypatch):
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    (block,) = _blocks("python", README)
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["balance"].unused.tolist()[0] == 23 and namespace["figure"].data
    from workbench.trace.runs import RunPickError

    with pytest.raises(RunPickError, match="no run named 'no-such-run' in datasets/nano"):
        namespace["wb"].open("datasets/nano").run("no-such-run")
