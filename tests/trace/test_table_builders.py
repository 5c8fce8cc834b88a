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
        "logprob": [None, None, None, None],
    }
    import numpy as np

    generated = tokens_table(["a"], [[0, 2, 3]], [None], vocab, logprobs=np.array([np.nan, -0.5, -2.0]))
    assert generated.column("logprob").to_pylist() == [None, -0.5, -2.0]


def test_batch_attention_tables_equal_each_row_concatenated(tiny_next):
    """A right-padded batch (rows of 40, 40, 40, 23 and 40 tokens, one with a span): alike rows are stacked into one
    table build, and the result equals `attention_tables` of every row, concatenated in row order."""
    import torch

    from workbench.capture import CaptureSettings, SequenceInfo, capture
    from workbench.inputs.spans import TokenSpan
    from workbench.capture.attention.tables import attention_tables, batch_attention_tables

    lengths, width = [40, 40, 40, 23, 40], 40
    span = TokenSpan("key", 0, 4, 2, 5, query=False)
    sequences = [SequenceInfo(f"s{b}", n, spans=[span] if b == 4 else [], row=b, padded_tokens=width)
                 for b, n in enumerate(lengths)]
    settings = CaptureSettings(routing=False, attention=True, attention_stride=8, attention_topk=3)
    with torch.inference_mode(), capture(tiny_next, settings) as run:
        run.begin_batch(sequences)
        tiny_next(input_ids=torch.randint(3, 200, (5, width), generator=torch.Generator().manual_seed(2)),
                  use_cache=False)
        rows = run.collect("attention")
    got = batch_attention_tables([s.seq_id for s in sequences], rows)
    for name in ("attention", "attention_gate"):
        expected = pa.concat_tables([attention_tables(s.seq_id, rows[s.row])[name] for s in sequences])
        assert got[name].equals(expected), name
    assert got["attention_gate"].num_rows == len(rows[0].layers) * sum(lengths)  # every real token, no padding
    assert set(got["attention"].column("seq_id").to_pylist()) == {f"s{b}" for b in range(5)}
