"""Parquet traces: the schema, the writer and the reader; the only code that touches pyarrow files."""

from .folder import TraceFolderError
from .reader import Trace, open_trace
from .schema import SCHEMA_VERSION, TABLES, schema_markdown, table_schema
from .writer import TraceWriter, new_run_id

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "Trace",
    "TraceFolderError",
    "TraceWriter",
    "new_run_id",
    "open_trace",
    "schema_markdown",
    "table_schema",
]
