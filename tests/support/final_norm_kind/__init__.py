"""A capture kind that lives only under tests/: the L2 norm of the decoder's final RMSNorm output per token.

It proves that a kind is its own package plus one registration line (below): it gets its `--final-norm` and
`--final-norm-stride` flags, its `final_norm` table and its `workbench schema` entry without an edit to the library
(tests/capture/test_recorder.py). A `workbench` subprocess loads it with WORKBENCH_CAPTURE_KINDS=support.final_norm_kind.
"""

from workbench.capture.kind import CaptureKind, register

from .schema import FINAL_NORM_COLUMNS
from .settings import FinalNormSettings

KIND = register(CaptureKind(name="final_norm", settings=FinalNormSettings, tables={"final_norm": FINAL_NORM_COLUMNS},
                            doc="The L2 norm of the final norm's output per token (table final_norm; a test kind)."))
