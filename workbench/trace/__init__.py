"""Parquet traces: the schema, the writer and the reader; the only code that touches pyarrow files."""

from .folder import TraceFolderError
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


def __getattr__(name: str):
    """The reader imports pyarrow.dataset (about 0.2 s), which writing a trace never needs: load it on first use."""
    if name in ("Trace", "open_trace"):
        from . import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
