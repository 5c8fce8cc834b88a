"""The notebook API: a trace folder as an object whose runs answer questions in one line.

    import workbench as wb
    trace = wb.open("datasets/nano")          # Trace: trace.runs lists the runs (a DataFrame)
    run = trace.run("20261202T010421Z")        # by run id, a unique id prefix, or name
    run.expert_load(layer=3, label="passkey")  # a tidy DataFrame: layer, expert, count, fraction
    run.plot.expert_load()                     # the dashboard's figure (plotly), shown by Jupyter

Every question is one call of the `workbench.analysis` function the dashboard's page runs (the same SQL, the same
numbers), and every figure is the page's figure function (`workbench.app.figures`) on that frame; nothing here
computes a number of its own.

trace_folder.py  Trace: the runs of one folder, picked by id, prefix or name
run.py           Run: the questions (routing, attention, DeltaNet state, long context, saliency, MTP)
plots.py         RunPlots (`run.plot`): the figures of those questions
tracing.py       trace prompts from Python into a folder and get the new Run back (`wb.trace`)
"""

from .run import MissingTable, Run
from ..trace.runs import RunPickError
from .trace_folder import AmbiguousRun, Trace

__all__ = ["AmbiguousRun", "MissingTable", "Run", "RunPickError", "Trace"]
