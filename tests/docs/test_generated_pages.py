"""The reference pages are generated from the code's registries when the docs are built (docs/hooks/
generated_pages.py), never pasted: the sources hold markers and no tables, and each generated text says what its
registry says — the schema page is schema_markdown() with a heading per table, a capture kind registered by a test
appears in the capture-kinds and schema pages with nothing edited by hand."""

import importlib.util
import re

import pytest
from doc_blocks import DOCS, pages

from workbench.adapters import families_markdown, registered_adapters
from workbench.capture.kind import flag_name, register, registered_kinds, unregister
from workbench.trace import TABLES, schema_markdown

spec = importlib.util.spec_from_file_location("generated_pages", DOCS / "hooks" / "generated_pages.py")
generated = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generated)

MARKERS = {"reference/schema.md": "schema", "reference/families.md": "families",
           "reference/capture-kinds.md": "capture_kinds", "reference/cli.md": "cli"}


@pytest.fixture
def final_norm_kind():
    """The test capture kind of tests/support (its package registers it on import), unregistered afterwards."""
    import support.final_norm_kind as package

    if "final_norm" not in registered_kinds():
        register(package.KIND)
    yield package.KIND
    unregister("final_norm")


def test_reference_pages_hold_markers_and_nothing_pasted():
    for page, name in MARKERS.items():
        assert f"<!-- generated: {name} -->" in (DOCS / page).read_text().splitlines(), page
    pasted = ("| column | type | meaning |", "| family | config `model_type` |", "| `seq_id` | string |")
    for page in pages():
        text = (DOCS / page).read_text()
        assert not [p for p in pasted if p in text], f"docs/{page} pastes a generated table"
    readme = (DOCS.parent / "README.md").read_text()
    assert not [p for p in pasted if p in readme], "README pastes a generated table: link the reference page"


def test_the_schema_page_is_schema_markdown_with_a_heading_per_table():
    page = generated.render("<!-- generated: schema -->")
    headings = re.findall(r"^### `([a-z_0-9]+)`$", page, flags=re.M)
    assert headings == list(TABLES)
    without_headings = "\n".join(line for line in page.splitlines() if not line.startswith("### "))
    assert without_headings.replace("\n\n\n", "\n\n").strip() == schema_markdown().replace("\n\n\n", "\n\n").strip()


def test_the_families_page_is_the_registry():
    assert generated.render("<!-- generated: families -->") == families_markdown()
    assert all(f"| {adapter.name} |" in families_markdown() for adapter in registered_adapters())


def test_the_capture_kinds_page_lists_every_kind_option_and_table(final_norm_kind):
    page = generated.capture_kinds()
    kinds = registered_kinds()
    assert "final_norm" in kinds and re.findall(r"^## `([a-z_]+)`$", page, flags=re.M) == list(kinds)
    for kind in kinds.values():
        assert kind.doc in page
        for field in kind.option_fields():
            assert f"| `{field.name}` | `{flag_name(field)}` |" in page
        assert all(f"[`{table}`](schema.md#{table})" in page for table in kind.tables)
    assert "### `final_norm`" in generated.schema()  # a new kind's table reaches the schema page too


def test_the_cli_page_documents_every_command_and_capture_flag():
    from workbench.cli import COMMANDS

    page = generated.cli()
    for name, _ in COMMANDS:
        assert f"### `workbench {name}`" in page
    for kind in registered_kinds().values():
        assert "`--" + kind.name.replace("_", "-") in page  # the switch, as cli_capture.py names it
        assert all(flag_name(field) in page for field in kind.option_fields())


def test_an_unknown_marker_fails_the_build():
    with pytest.raises(ValueError, match="unknown generated block 'tables'"):
        generated.render("<!-- generated: tables -->")
