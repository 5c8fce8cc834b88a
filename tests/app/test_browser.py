"""The dashboard in a real browser: `workbench app` served on 127.0.0.1, every page opened in headless Chromium
(Debian's package, driven by Playwright for Python with executable_path: no browser download), plotly graphs
awaited, no exception box, a non-empty plot on each page, screenshots saved; then SIGTERM, and the server must be
gone and its port free.

Screenshots go to $WORKBENCH_ARTIFACTS (default: tests/app/artifacts/, git-ignored). Without a browser the test
skips with the reason; WORKBENCH_REQUIRE_BROWSER=1 (set by .ci/run) turns that skip into a failure."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hand_trace import write_hand_trace

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"overview": "", "routing": "routing", "token_explorer": "token_explorer", "deltanet": "deltanet",
         "attention": "attention", "long_context": "long_context", "mtp": "mtp", "compare": "compare"}
ARTIFACTS = Path(os.environ.get("WORKBENCH_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))


def _no_browser(reason: str):
    if os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required (WORKBENCH_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, process, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, "workbench app exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"workbench app did not answer on port {port} within {seconds} s")


def require_browser():
    """Playwright's sync API, or a skip (a failure under WORKBENCH_REQUIRE_BROWSER=1) naming what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("the playwright package is not installed (make install adds it)")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _no_browser(f"no Chromium at {CHROMIUM} (make test installs Debian's chromium when run as root with apt-get)")
    return sync_playwright


def start_app(trace) -> tuple[subprocess.Popen, int]:
    """`workbench app TRACE` on a free port in its own process group (stop it with os.killpg(pid, SIGTERM))."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "workbench.cli", "app", str(trace), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return server, port


def test_every_page_in_a_real_browser(tmp_path):
    sync_playwright = require_browser()
    trace = tmp_path / "trace"
    runs = write_hand_trace(trace)
    server, port = start_app(trace)
    try:
        _wait_healthy(port, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                                 chromium_sandbox=False, headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 2400})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            # pick run A (every table) in the sidebar's run selectbox; the choice persists across pages
            page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
            page.get_by_role("option").filter(has_text=runs["a"]).first.click()
            for name, url in PAGES.items():
                page.get_by_role("link", name=_title(name)).first.click()
                page.locator("h1").filter(has_text=_title(name)).first.wait_for(timeout=30_000)
                page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                       timeout=60_000)
                page.wait_for_timeout(500)
                assert page.locator("[data-testid='stException']").count() == 0, f"{name}: exception box shown"
                marks = page.evaluate("() => document.querySelectorAll('.js-plotly-plot .plot path, "
                                      ".js-plotly-plot .heatmaplayer image, .js-plotly-plot .points path').length")
                assert marks > 0, f"{name}: the plots are empty"
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert server.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # no process of the server's group is left
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the port still answers after SIGTERM"


def _title(name: str) -> str:
    return {"overview": "Overview", "routing": "Routing & sparsity", "token_explorer": "Token explorer",
            "deltanet": "DeltaNet state", "attention": "Attention recall", "long_context": "Long context",
            "mtp": "Multi-token prediction",
            "compare": "Compare runs"}[name]
