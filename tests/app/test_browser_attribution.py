"""The Attribution page in a real browser on the shipped dataset: the attribution run's bars and the patching
heatmaps (an intervention) draw, with no exception box."""

import os
import signal
from pathlib import Path

from test_browser import ARTIFACTS, CHROMIUM, FLAGS, _wait_healthy, require_browser, start_app

SHIPPED = Path(__file__).resolve().parents[2] / "datasets" / "nano"


def test_attribution_page_in_a_real_browser(tmp_path):
    sync_playwright = require_browser()
    from workbench.trace import open_trace

    attribution_run = [m["run_id"] for m in open_trace(SHIPPED).manifests()
                       if "logit_attribution" in m.get("tables", [])][-1]
    server, port = start_app(SHIPPED)
    try:
        _wait_healthy(port, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, chromium_sandbox=False,
                                                 headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 3000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
            page.get_by_role("option").filter(has_text=attribution_run).first.click()
            page.get_by_role("link", name="Attribution").first.click()
            page.locator("h1").filter(has_text="Attribution").first.wait_for(timeout=30_000)
            page.get_by_text("INTERVENTION — activation patching, mixer sites").first.wait_for(timeout=60_000)
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                   timeout=60_000)
            page.wait_for_timeout(500)
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.get_by_text("Contribution to the answer logit by layer, mean over 40").count() >= 1
            marks = page.evaluate("() => document.querySelectorAll('.js-plotly-plot .plot path, "
                                  ".js-plotly-plot .heatmaplayer image').length")
            assert marks > 0
            page.screenshot(path=str(ARTIFACTS / "attribution.png"), full_page=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
