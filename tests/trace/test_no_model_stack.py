"""Reading a trace never loads the model stack: the schema (assembled from the capture kinds' schema modules), the
reader, the analyses and the dashboard's state import neither torch nor transformers (torch alone costs ~1 s)."""

import subprocess
import sys


def test_reading_side_imports_without_torch():
    code = ("import sys\n"
            "import workbench.trace, workbench.trace.reader, workbench.analysis.db, workbench.analysis.facts\n"
            "import workbench.app.state, workbench.capture.kind\n"
            "from workbench.trace import TABLES\n"
            "assert 'routing' in TABLES and 'deltanet' in TABLES\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
            "print(loaded[:5])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
