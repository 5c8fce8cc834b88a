"""mkdocs hook: fill the reference pages from the code's registries at build time, so nothing generated is pasted.

A page asks for generated content with a marker line of its own, `<!-- generated: NAME -->`; `on_page_markdown`
replaces it with GENERATORS[NAME]() (an unknown name fails the build). tests/docs/test_generated_pages.py checks
that the sources hold markers, not tables, and that each generator returns what the registry says.

    schema          every trace table's columns (workbench.trace.schema.schema_markdown), a heading per table
    families        the supported families (workbench.adapters.families_markdown)
    capture_kinds   every registered capture kind: switch, options with CLI flag, default and meaning, tables
    cli             every `workbench` command's usage, arguments and options (typer's own Markdown, from the app)
"""

from __future__ import annotations

import re
from dataclasses import MISSING

MARKER = re.compile(r"^<!-- generated: ([a-z_]+) -->$", re.M)


def schema() -> str:
    """schema_markdown() with a `### table` heading before each table's bold title (for the page's contents)."""
    from workbench.trace.schema import schema_markdown

    lines = []
    for line in schema_markdown().splitlines():
        title = re.match(r"^\*\*`([a-z_0-9]+)`\*\* — ", line)
        if title:
            lines += [f"### `{title.group(1)}`", ""]
        lines.append(line)
    return "\n".join(lines)


def families() -> str:
    from workbench.adapters import families_markdown

    return families_markdown()


def _default(field) -> str:
    value = field.default if field.default is not MISSING else None
    return "none" if value in ((), None) else f"`{value}`"


def capture_kinds() -> str:
    """One section per registered kind: what it records, its switch, its options, the tables it writes."""
    from workbench.capture.kind import flag_name, registered_kinds

    parts = []
    for name, kind in registered_kinds().items():
        flag = "--" + name.replace("_", "-")  # as cli_capture.py names the switch
        switch = f"`{flag}/--no-{flag[2:]}` (on by default)" if kind.default_on else f"`{flag}`"
        package = kind.settings.__module__.rsplit(".", 1)[0].replace(".", "/")
        tables = ", ".join(f"[`{t}`](schema.md#{t})" for t in kind.tables)
        lines = [f"## `{name}`", "", kind.doc, "",
                 f"Switch: {switch}, `CaptureSettings({name}=True)`. Package: `{package}/`. Tables: {tables}.", ""]
        options = kind.option_fields()
        if options:
            lines += ["| option (`CaptureSettings`, manifest) | CLI flag | default | meaning |", "|---|---|---|---|"]
            for field in options:
                meta = field.metadata
                checks = []
                if meta.get("choices"):
                    checks.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
                if meta.get("least") is not None:
                    checks.append(f">= {meta['least']}")
                if meta.get("repeatable"):
                    checks.append("repeatable")
                doc = meta["doc"].replace("|", "\\|") + (f" ({'; '.join(checks)})" if checks else "")
                lines.append(f"| `{field.name}` | `{flag_name(field)}` | {_default(field)} | {doc} |")
            lines.append("")
        else:
            lines += ["No options beyond the switch.", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def cli() -> str:
    """typer's Markdown for the `workbench` app (the same text as each command's --help), headings from level 2."""
    import typer
    from typer.cli import get_docs_for_click

    from workbench.cli import app

    command = typer.main.get_command(app)
    return get_docs_for_click(obj=command, ctx=typer.Context(command), name="workbench", indent=1).strip()


GENERATORS = {"schema": schema, "families": families, "capture_kinds": capture_kinds, "cli": cli}


def render(markdown: str) -> str:
    """The page's Markdown with every marker replaced by its generated text."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return render(markdown)
