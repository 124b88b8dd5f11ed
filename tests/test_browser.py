"""The weekly report and the Dagster UI, opened in a real headless Chromium (Debian's
`chromium` package, driven by Playwright; never `playwright install`)."""

from __future__ import annotations

import contextlib
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
from conftest import skip_or_fail

from orchestration import project
from orchestration.report import build_report

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for candidate in (os.environ.get("RINGLEDGER_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    skip_or_fail("no Chromium found (apt-get install -y chromium; .ci/run installs it)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Screenshots: RINGLEDGER_TEST_ARTIFACTS when set, else a folder of pytest's temp dir."""
    explicit = os.environ.get("RINGLEDGER_TEST_ARTIFACTS")
    path = Path(explicit) if explicit else tmp_path_factory.getbasetemp() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture()
def browser_page(tmp_path):
    """A fresh Chromium profile; every request leaving this machine is blocked and recorded."""
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        page.console_errors = []
        page.page_errors = []
        page.external_requests = []

        def route(route_):
            url = route_.request.url
            if url.startswith(("file:", "data:", "blob:", "http://127.0.0.1", "ws://127.0.0.1")):
                route_.continue_()
            else:
                page.external_requests.append(url)
                route_.abort()

        page.route("**/*", route)
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.page_errors.append(str(e)))
        try:
            yield page
        finally:
            context.close()


def test_report_charts_render_in_chromium(pipeline_run, tmp_path, browser_page, artifacts_dir):
    result = build_report(pipeline_run.marts, tmp_path / "report")
    page = browser_page
    page.goto(result.html_path.as_uri())
    page.wait_for_function("document.body.dataset.chartsDone === 'true'", timeout=60_000)
    charts = page.evaluate(
        """() => Array.from(document.querySelectorAll('.chart')).map(el => {
            const svg = el.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {id: el.id, rendered: el.dataset.rendered, marks: svg ? svg.querySelectorAll('path, rect, text, line').length : 0,
                    width: box.width, height: box.height};
        })"""
    )
    page.screenshot(path=str(artifacts_dir / "weekly_report.png"), full_page=True)
    assert [c["id"] for c in charts] == [f"chart-{chart.name}" for chart in result.charts]
    for chart in charts:
        assert chart["rendered"] == "true", chart
        assert chart["marks"] > 20 and chart["width"] > 300 and chart["height"] > 150, chart
    assert page.evaluate("document.body.dataset.chartsRendered") == str(len(result.charts))
    assert not page.console_errors, page.console_errors
    assert not page.page_errors, page.page_errors
    assert not page.external_requests, f"the page must open offline: {page.external_requests}"
    assert page.get_by_text("ALL GATES PASSED").is_visible()
    assert page.get_by_text("Conversion cliff", exact=False).first.is_visible()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


@pytest.mark.browser
def test_dagster_dev_serves_the_asset_graph(tmp_path, browser_page, artifacts_dir):
    """`dagster dev` at the repository root serves the UI and its asset graph loads."""
    bin_dir = Path(sys.executable).parent
    dagster = bin_dir / "dagster"
    if not dagster.exists():
        skip_or_fail(f"no dagster executable beside {sys.executable}")
    _chromium()
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(project.REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(home),
        RINGLEDGER_WAREHOUSE=str(tmp_path / "data" / "warehouse.duckdb"),
        RINGLEDGER_LANDING_DIR=str(tmp_path / "data" / "landing"),
        # as in an activated venv: `dagster dev` parses the dbt project with the `dbt` on PATH
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    log = (tmp_path / "dagster.log").open("w")
    process = subprocess.Popen(
        [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=project.REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    page = browser_page
    try:
        _wait_http(f"{base}/server_info", process, timeout=180)
        page.goto(f"{base}/asset-groups", timeout=60_000)
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with contextlib.suppress(PlaywrightTimeout):  # the first-visit newsletter dialog
            page.get_by_role("button", name="Skip").click(timeout=8_000)
        # the global lineage lists every group, the report's included
        page.get_by_text("report", exact=True).first.wait_for(timeout=90_000)
        page.goto(f"{base}/locations/ringledger/asset-groups/marts", timeout=60_000)
        page.get_by_text("fct_calls", exact=False).first.wait_for(timeout=90_000)
        page.screenshot(path=str(artifacts_dir / "dagster_asset_graph.png"))
        page.goto(f"{base}/locations/ringledger/asset-groups/report", timeout=60_000)
        page.get_by_text("weekly_report", exact=False).first.wait_for(timeout=60_000)
        assert not page.page_errors, page.page_errors
        local_errors = [
            e for e in page.console_errors if "ERR_FAILED" not in e and "ERR_NAME_NOT_RESOLVED" not in e
        ]
        assert not local_errors, local_errors  # external (telemetry) requests are blocked on purpose
    except Exception:
        log.flush()
        print((tmp_path / "dagster.log").read_text()[-6000:])
        raise
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
        log.close()
