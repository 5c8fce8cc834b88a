"""Tracing: prompts in, one run of a trace folder out.

`manifest`: the run manifest and the one resume check; `batching`: prompts -> right-padded batches, tokenised on a
background thread; `pipeline`: the table-building pool beside the forwards and Ctrl-C at batch boundaries;
`orchestrator`: `trace_prompts`, which runs them all; `probe_run`: `write_probe_run`, how every probe appends its
tables as a run. The names below are the package's public ones (import them from `workbench.tracing`).
"""

from .batching import Encoded, batches, encode_prompt, padded_ids, plan_batches, prefetched
from .manifest import RunNotResumable, check_resume, package_versions, run_manifest
from .orchestrator import PART_TOKENS, RunSummary, TraceInterrupted, trace_prompts
from .pipeline import TableBuilder, stop_on_sigint, token_strings
from .probe_run import ProbeRun, write_probe_run

__all__ = [
    "PART_TOKENS",
    "Encoded",
    "ProbeRun",
    "RunNotResumable",
    "RunSummary",
    "TableBuilder",
    "TraceInterrupted",
    "batches",
    "check_resume",
    "encode_prompt",
    "package_versions",
    "padded_ids",
    "plan_batches",
    "prefetched",
    "run_manifest",
    "stop_on_sigint",
    "token_strings",
    "trace_prompts",
    "write_probe_run",
]
