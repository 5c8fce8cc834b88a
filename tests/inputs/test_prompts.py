"""Prompt files: good lines parse; each bad line is named in the error."""

import pytest

from workbench.inputs.prompts import PromptFileError, read_prompts


def _write(tmp_path, text):
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    return path


def test_reads_ids_text_labels_and_extra(tmp_path):
    path = _write(tmp_path, '{"id": "a", "text": "hi", "label": "x"}\n\n{"id": 7, "text": "yo", "answer": "1"}\n')
    prompts = read_prompts(path)
    assert [(p.id, p.text, p.label) for p in prompts] == [("a", "hi", "x"), ("7", "yo", None)]
    assert prompts[1].extra == {"answer": "1"}


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2: not valid JSON"),
        ('["a", "b"]', "line 2: expected a JSON object"),
        ('{"id": "b"}', "line 2: missing required key 'text'"),
        ('{"text": "t"}', "line 2: missing required key 'id'"),
        ('{"id": "b", "text": ""}', "line 2: 'text' must be a non-empty string"),
        ('{"id": "b", "text": "t", "label": 3}', "line 2: 'label' must be a string"),
        ('{"id": "a", "text": "t"}', "line 2: duplicate id 'a' \\(first on line 1\\)"),
    ],
    ids=["json", "not-object", "no-text", "no-id", "empty-text", "label-type", "duplicate"],
)
def test_bad_line_is_named(tmp_path, line, message):
    path = _write(tmp_path, '{"id": "a", "text": "fine"}\n' + line + "\n")
    with pytest.raises(PromptFileError, match=message):
        read_prompts(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(PromptFileError, match="does not exist"):
        read_prompts(tmp_path / "none.jsonl")
    with pytest.raises(PromptFileError, match="holds no prompts"):
        read_prompts(_write(tmp_path, "\n\n"))


def test_non_utf8_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"id": "a", "text": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(PromptFileError, match="latin1.jsonl is not UTF-8 text"):
        read_prompts(path)
