"""Small builders the trace tables share, against hand-written expectations."""

import pyarrow as pa

from workbench.trace.tables import repeated_strings, seq_column, tokens_table


def test_repeated_strings_by_hand():
    got = repeated_strings(["a", None, "bc", "d"], [2, 1, 0, 3])
    assert got.type == pa.string()
    assert got.to_pylist() == ["a", "a", None, "d", "d", "d"]
    assert repeated_strings([], []).to_pylist() == []
    assert seq_column("p7", 3).to_pylist() == ["p7"] * 3


def test_tokens_table_of_two_sequences_by_hand():
    vocab = pa.array(["<s>", "x", "y", "z"], type=pa.string())
    table = tokens_table(["a", "b"], [[0, 2, 3], [1]], ["lab", None], vocab)
    assert table.to_pydict() == {
        "seq_id": ["a", "a", "a", "b"],
        "position": [0, 1, 2, 0],
        "token_id": [0, 2, 3, 1],
        "token": ["<s>", "y", "z", "x"],
        "label": ["lab", "lab", "lab", None],
    }
