"""The trace schema: every table's columns with meaning, dtype, units and sign.

A trace folder holds one hive-partitioned Parquet dataset per table (`<out>/<table>/run_id=<id>/*.parquet`),
a run manifest per run (`<out>/runs/<run_id>.json`) and `<out>/workbench.json` naming the schema version.
`run_id` is the hive partition key: it is not stored inside the files but appears as a column on read.
Rows are one per (sequence, token) in `tokens` and one per (sequence, token, MoE layer) in `routing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1.0"
SCHEMA_VERSION_KEY = b"workbench.schema_version"
TABLE_KEY = b"workbench.table"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False


RUN_ID = Column("run_id", pa.string(), "Run identifier, `<UTC time>-<random hex>`; hive partition key.")
SEQ_ID = Column("seq_id", pa.string(), "Prompt id from the prompts file (unique within a run).")
POSITION = Column("position", pa.int32(), "Token position in its sequence, 0-based.")

TOKENS_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("token_id", pa.int32(), "Vocabulary id of the token."),
    Column("token", pa.string(), "The token as the tokenizer spells it (convert_ids_to_tokens)."),
    Column("label", pa.string(), "Prompt label from the prompts file (e.g. a domain), null when absent.", True),
)

ROUTING_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index (0-based) of the MoE block."),
    Column(
        "topk_ids",
        pa.list_(pa.uint16()),
        "The k experts the router chose, in the router's order (descending probability); ids in [0, E).",
    ),
    Column(
        "topk_weights",
        pa.list_(pa.float16()),
        "Weights mixing the chosen experts' outputs, same order as topk_ids; in [0, 1], summing to 1 when "
        "the config renormalises (norm_topk_prob). float16: absolute error <= 2.5e-4.",
    ),
    Column(
        "router_entropy",
        pa.float16(),
        "Entropy of softmax(router logits) over all E experts, in nats, in [0, ln E]. Low = confident router.",
    ),
    Column(
        "topk_mass",
        pa.float16(),
        "Sum of the chosen experts' probabilities before renormalisation, in (0, 1]: how much of the "
        "router's distribution the top-k covers.",
    ),
    Column(
        "topk_margin",
        pa.float16(),
        "p_(k) - p_(k+1): probability of the k-th chosen expert minus the best expert left out, >= 0. "
        "Near 0 = the last routing decision was a near tie.",
    ),
    Column(
        "shared_gate",
        pa.float16(),
        "sigmoid(shared_expert_gate(x)) in (0, 1): how much of the shared expert's output is added. "
        "Null for models without a gated shared expert.",
        True,
    ),
)

ROUTER_LOGITS_COLUMNS = (
    SEQ_ID,
    POSITION,
    Column("layer", pa.int16(), "Decoder-layer index of the MoE block."),
    Column(
        "router_logits",
        pa.list_(pa.float16()),
        "Pre-softmax router scores for all E experts (only written when asked: E x 2 bytes per row).",
    ),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "tokens": TOKENS_COLUMNS,
    "routing": ROUTING_COLUMNS,
    "router_logits": ROUTER_LOGITS_COLUMNS,
}


def table_schema(table: str) -> pa.Schema:
    """The Arrow schema of one table's files (without the `run_id` partition column), with the schema
    version and every column's doc in the metadata."""
    try:
        columns = TABLES[table]
    except KeyError:
        raise ValueError(f"unknown trace table {table!r}; tables: {', '.join(TABLES)}") from None
    fields = [pa.field(c.name, c.type, nullable=c.nullable, metadata={"doc": c.doc}) for c in columns]
    return pa.schema(fields, metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: table.encode()})


def schema_markdown() -> str:
    """All tables as Markdown, for the README and `workbench schema`."""
    lines = [f"Schema version {SCHEMA_VERSION}. Every table also has `run_id` (string): {RUN_ID.doc}", ""]
    for table, columns in TABLES.items():
        lines += [f"**`{table}`**", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in columns]
        lines.append("")
    return "\n".join(lines)
