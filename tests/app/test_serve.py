"""`workbench app DIR` really serves the dashboard on 127.0.0.1 (what `make demo` ends with)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from workbench.trace import TraceWriter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_app_command_serves_on_localhost(tmp_path):
    TraceWriter(tmp_path / "trace")  # an empty but valid trace folder
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "app", str(tmp_path / "trace"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline, status = time.time() + 60, None
        while time.time() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    status = response.status
            except OSError:
                time.sleep(0.5)
        assert status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert b"<html" in response.read().lower()
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the whole session: no server outlives the test
        process.wait(timeout=20)
    with socket.socket() as sock:  # the port is free again: nothing is left serving
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_app_command_refuses_a_non_trace_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "app", str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "not a workbench trace folder" in result.stderr
