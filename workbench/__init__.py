"""workbench: observe hybrid linear-attention and MoE language models without changing them (Qwen3-Next, Qwen3.5,
Kimi-Linear, plain MoE transformers: workbench.adapters lists the families).

Data flows one way: adapters (what a model family looks like) -> capture (hooks) -> ops (math)
-> trace (Parquet) -> analysis (tables in, tables out) -> app / probes / cli / notebook.

In a notebook (workbench.notebook):

    import workbench as wb
    trace = wb.open("datasets/nano")                 # a trace folder: trace.runs, trace.run(name or id)
    run = trace.run("20261202T010421Z")               # a unique id prefix, a full id, or a run's name
    run.expert_load(layer=3, label="passkey")         # tidy DataFrame from the dashboard's own analysis function
    run.plot.expert_load()                            # the dashboard's figure
    new = wb.trace("nano", ["the pass key is 12345 ."], "traces/mine", deltanet=True)   # trace, get the Run

`import workbench` loads neither torch nor pandas: `wb.open` imports the analysis stack (DuckDB, pandas) on first
use, `wb.trace` the model stack (torch, transformers).

`workbench.trace` is both the trace package (schema, writer, reader: `workbench.trace.open_trace`, ...) and, when
called, `workbench.notebook.tracing.trace`: the package's module object is made callable below, so that
`wb.trace(...)` and `import workbench.trace.writer` both keep working whatever is imported first.
"""

import types

from . import trace as _trace_package  # pyarrow only (the CLI imports it anyway); never torch

__version__ = "0.1.0"


def open(path):  # noqa: A001 - wb.open(path), as the notebook API's front door
    """Open a trace folder for questions: a `workbench.notebook.Trace` (its `runs`, `run(name_or_id)`)."""
    from .notebook import Trace

    return Trace(path)


class _CallableTracePackage(types.ModuleType):
    """The `workbench.trace` package, callable: `wb.trace(model, prompts, out, **capture)` traces prompts and
    returns the new `workbench.notebook.Run` (see `workbench.notebook.tracing.trace` for the arguments)."""

    def __call__(self, model, prompts, out, **options):
        from .notebook.tracing import trace

        return trace(model, prompts, out, **options)


_trace_package.__class__ = _CallableTracePackage


def __getattr__(name: str):
    """`wb.Trace` and `wb.Run` (the notebook classes), imported on first use."""
    if name in ("Trace", "Run"):
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
