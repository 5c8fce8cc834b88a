"""The trace schema: every table's columns with meaning, dtype, units and sign.

A trace folder holds one hive-partitioned Parquet dataset per table (`<out>/<table>/run_id=<id>/*.parquet`),
a run manifest per run (`<out>/runs/<run_id>.json`) and `<out>/workbench.json` naming the schema version.
`run_id` is the hive partition key and, from schema 1.1, also the first column inside every file (the writer
adds it), so a reader that ignores hive partitions (HF `datasets`) still tells runs apart. Schema 1.0 folders
(run_id only in the path, span masses as a map) are read, never appended to.
Each table's columns live with what writes it: the trace's own tables below, each capture kind's in
capture/<kind>/schema.py, the probes' in probe_schema.py; `TABLES` assembles them (`workbench schema` prints them).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from .column import POSITION, RUN_ID, SEQ_ID, Column
from .generation_schema import GENERATION_TABLES
from .probe_schema import PROBE_TABLES

SCHEMA_VERSION = "1.3"
# Versions this code can read; only SCHEMA_VERSION is written. 1.0 -> 1.1: run_id stored inside every file,
# attention.span_mass a list<struct<span, mass>> (a map has no HF datasets type), new table needle_sweep.
# 1.1 -> 1.2: DeltaNet decays stored as the float32 log decay g (exp(g) derived on read; float16 exp(g) was
# subnormal or 0 for fast heads): deltanet.decay_min -> log_decay_min, deltanet_heads.decay -> log_decay;
# state retention (state_recall.retention_*), DeltaNet needle contribution
# (table deltanet_contribution), needle_sweep/state_capacity/layer_ablation probe tables.
# 1.2 -> 1.3: `phase` (prefill | decode) after the columns of every per-token table, filled by the writer ('prefill'
# unless a generation says otherwise; null when reading older files); tokens.logprob; the `drafts` table.
READABLE_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
SCHEMA_VERSION_KEY = b"workbench.schema_version"
TABLE_KEY = b"workbench.table"


# The trace's own tables, written for every run whatever the capture: the tokens, and the prompts' named spans.
TOKENS_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("token_id", pa.int32(), "Vocabulary id of the token."),
    Column("token", pa.string(), "The token as the tokenizer spells it (convert_ids_to_tokens)."),
    Column("label", pa.string(), "Prompt label from the prompts file (e.g. a domain), null when absent.", True),
    Column("logprob", pa.float32(), "Generated tokens (`workbench generate`): the model's log-probability of the token "
           "when it was chosen, ln p <= 0, from the raw logits (before temperature / top-p). Null for prompt tokens.",
           True),
)

PHASE = Column("phase", pa.string(), "'prefill' (the prompt's forward) or 'decode' (a token generated after it, "
               "`workbench generate`), by the row's position against the prompt's length. Every per-token table has it "
               "last; the writer fills 'prefill' where the caller gives none; null in files before schema 1.3.", True)


SPANS_COLUMNS = (
    SEQ_ID,
    Column("span", pa.string(), "Span name from the prompt's `spans` (unique within a sequence), e.g. needle."),
    Column("start_char", pa.int32(), "First character of the span in the prompt text (Python string index)."),
    Column("end_char", pa.int32(), "One past the span's last character."),
    Column(
        "start_token",
        pa.int32(),
        "First token position overlapping the span (a token belongs to a span when their character ranges "
        "overlap, so a span starting inside a token takes the whole token).",
    ),
    Column(
        "end_token",
        pa.int32(),
        "One past the span's last token; equal to start_token when no traced token covers it (cut by --max-tokens). "
        "Tokens of the span: start_token <= position < end_token.",
    ),
    Column("query", pa.bool_(), "The span's tokens were analysed as query rows in `attention` (span key query: true)."),
)



class Tables(Mapping):
    """Table name -> columns, of every table a trace can hold: the trace's own (tokens, spans), each registered capture
    kind's (capture/<kind>/schema.py, in registration order) and the probes' (probe_schema.py). Read at each lookup,
    so a kind registered later (a plugin, the test kind) is a table like the rest."""

    def _all(self) -> dict[str, tuple[Column, ...]]:
        from ..capture.kind import kind_tables  # torch-free: the kinds' settings and schema modules only

        return {"tokens": TOKENS_COLUMNS, "spans": SPANS_COLUMNS, **kind_tables(), **GENERATION_TABLES, **PROBE_TABLES}

    def __getitem__(self, table: str) -> tuple[Column, ...]:
        return self._all()[table]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


TABLES = Tables()


def table_schema(table: str, with_run_id: bool = False) -> pa.Schema:
    """The Arrow schema of one table as a table builder produces it (without `run_id`; with it first when
    `with_run_id`: what the writer stores, see `file_schema`), with the schema version and every column's doc in
    the metadata."""
    try:
        columns = TABLES[table]
    except KeyError:
        raise ValueError(f"unknown trace table {table!r}; tables: {', '.join(TABLES)}") from None
    columns = (RUN_ID, *columns) if with_run_id else columns
    fields = [pa.field(c.name, c.type, nullable=c.nullable, metadata={"doc": c.doc}) for c in columns]
    return pa.schema(fields, metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: table.encode()})


def has_phase(table: str) -> bool:
    """Whether the table is per token (has a `position` column, and is not a probe's): its files end with `phase`."""
    return table not in PROBE_TABLES and any(c.name == POSITION.name for c in TABLES[table])


def file_schema(table: str) -> pa.Schema:
    """The Arrow schema of one table's Parquet files: `run_id` first, then the table's columns, then `phase` for a
    per-token table (the writer adds both)."""
    schema = table_schema(table, with_run_id=True)
    if has_phase(table):
        schema = schema.append(pa.field(PHASE.name, PHASE.type, nullable=True, metadata={"doc": PHASE.doc}))
    return schema


def table_writers() -> dict[str, str]:
    """Table -> who writes it, in words: every run, a capture kind's flag, or a probe."""
    from ..capture.kind import registered_kinds

    writers = {"tokens": "every run", "spans": "every run whose prompts name spans"}
    for name, kind in registered_kinds().items():
        writers.update({table: f"capture kind `{name}` (capture/{kind.settings.__module__.split('.')[-2]}/)"
                        for table in kind.tables})
    writers.update({table: "`workbench generate`" for table in GENERATION_TABLES})
    writers.update({table: "a probe (workbench/probes/)" for table in PROBE_TABLES})
    return writers


def schema_markdown() -> str:
    """All tables as Markdown, for `workbench schema` and the docs' trace schema page (generated from it)."""
    lines = [f"Schema version {SCHEMA_VERSION}. Every table's first column is `run_id` (string): {RUN_ID.doc} Every "
             f"per-token table (one with `position`, not a probe's) ends with `phase` (string): {PHASE.doc}", ""]
    writers = table_writers()
    for table, columns in TABLES.items():
        lines += [f"**`{table}`** — written by {writers[table]}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in columns]
        lines.append("")
    return "\n".join(lines)
