"""The package works from a wheel, not only from this checkout: `pip wheel .` into a fresh virtualenv, then
`workbench trace --model nano --text ...` (the nano checkpoint is package data) and `workbench app` (the dashboard
is package data) run from that install, outside the source tree.

To stay fast the new venv installs only the wheel (--no-deps); a .pth file makes the project venv's
site-packages (torch, transformers, streamlit, ...) visible after its own. The project's editable install is not
picked up: .pth files of a path added that way are not processed, and the test checks `workbench.__file__`."""

import os
import signal
import site
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every command runs without the caller's PYTHONPATH: one naming a source tree would shadow the installed wheel.
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def _run(command, cwd, timeout=300, env=ENV):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wheel_install_traces_nano_and_serves_the_app(tmp_path):
    wheels = tmp_path / "wheels"
    # setuptools builds in <root>/build/ and never empties it, so modules moved out of the package since that folder
    # was made would ship again: build in a fresh folder instead (DIST_EXTRA_CONFIG: one more setup.cfg to read)
    (tmp_path / "build.cfg").write_text(f"[build]\nbuild_base = {tmp_path / 'build'}\n")
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w",
          str(wheels)], cwd=tmp_path, env={**ENV, "DIST_EXTRA_CONFIG": str(tmp_path / "build.cfg")})
    wheel = next(wheels.glob("workbench-*.whl"))
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    pages = ["overview", "routing", "token_explorer", "deltanet", "attention", "long_context", "compare"]
    missing = [n for n in ["workbench/app/streamlit_app.py", "workbench/app/figures/routing.py",
                           "workbench/nano/checkpoint/config.json", *(f"workbench/app/app_pages/{p}.py" for p in pages)]
               if n not in names]
    assert not missing, f"the wheel lacks {missing}"
    lab = {f"workbench/nano/{script}.py" for script in ("train", "sweep", "evaluate")}  # the lab: nano/ of the repository
    shipped_lab = sorted(n for n in names if n in lab or n.startswith(("workbench/testing/", "nano/", "tests/")))
    assert not shipped_lab, f"the wheel ships the nano's lab or test helpers: {shipped_lab}"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    own_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         cwd=tmp_path).strip())
    (own_site / "project-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=tmp_path)
    where = _run([str(python), "-c", "import workbench, workbench.app; print(workbench.__file__)"], cwd=tmp_path)
    assert where.strip().startswith(str(own_site)), f"workbench imported from {where}, not the wheel"

    workbench = venv / "bin" / "workbench"
    out = tmp_path / "trace"
    printed = _run([str(workbench), "trace", "--model", "nano", "--text", "the pass key is 12345 . what is the pass "
                    "key ? the pass key is", "--out", str(out)], cwd=tmp_path)
    assert "1 sequence," in printed
    info = _run([str(workbench), "info", str(out)], cwd=tmp_path)
    assert "routing:" in info and "B/token" in info

    port = _free_port()
    server = subprocess.Popen([str(workbench), "app", str(out), "--port", str(port)], cwd=tmp_path, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, status = time.time() + 60, None
        while time.time() < deadline and status != 200:
            assert server.poll() is None, "workbench app exited early"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    status = response.status
            except OSError:
                time.sleep(0.3)
        assert status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
