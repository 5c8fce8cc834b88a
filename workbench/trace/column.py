"""A trace column (name, Arrow type, meaning) and the columns many tables share. Imports pyarrow only."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False


RUN_ID = Column("run_id", pa.string(), "Run identifier, `<UTC time>-<random hex>`; stored in every file (from "
                "schema 1.1) and the hive partition key.")
SEQ_ID = Column("seq_id", pa.string(), "Prompt id from the prompts file (unique within a run).")
POSITION = Column("position", pa.int32(), "Token position in its sequence, 0-based.")
MOE_LAYER = Column("layer", pa.int16(), "Decoder-layer index (0-based) of the MoE block.")
