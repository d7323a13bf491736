"""Headless Chromium for the web console's tests, driven by Playwright.

The browser is Debian's chromium (shared.infra.chromium installs it when
missing and we are root); `playwright install` is never run, since it would
download a browser build of its own, which cannot work here. One browser is
started for this test package; Playwright gives it a fresh temporary
user-data dir, and each test gets a new context of its own (no cookies or
storage shared between tests). The package scope matters: Playwright's sync
API keeps an event loop running in the main thread while it is open, which
the asyncio tests of the other packages cannot share.

`browser_page` records what a person would see as broken: console errors,
uncaught exceptions, requests that failed and same-origin answers >= 400.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from shared.infra.chromium import HEADLESS_FLAGS, chromium_version, find_chromium
from tests.console.browser import BrowserPage, Screenshot
from tests.console.stack import Stack, running_stack, wait_for_models

SCREENSHOT_DIR_ENV = "FLUXO_SCREENSHOT_DIR"
VIEWPORT = {"width": 1280, "height": 800}
# Playwright's own default is 30 s per action; a page of ours that takes
# longer than this is broken, and waiting it out only slows the failure.
ACTION_TIMEOUT_MS = 15_000

# Measured once per session and printed at the end of the run.
_browser_report: dict[str, str] = {}


@pytest.fixture(scope="package")
def chromium_browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the console tests."""
    began = time.monotonic()
    try:
        executable: Path | Exception = find_chromium()
    except RuntimeError as exc:
        executable = exc
    if isinstance(executable, Exception):  # failing outside `except` keeps the report short
        pytest.fail(f"no browser for the console tests: {executable}", pytrace=False)
    with sync_playwright() as playwright:
        driver_ready = time.monotonic()
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=list(HEADLESS_FLAGS), headless=True, timeout=60_000
        )
        launched = time.monotonic()
        _browser_report["browser"] = (
            f"{chromium_version(executable)} via Playwright (driver {driver_ready - began:.1f} s, "
            f"browser launch {launched - driver_ready:.1f} s)"
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium_browser: Browser) -> Iterator[BrowserPage]:
    """A fresh page in a fresh context, with its problems recorded (see BrowserPage)."""
    context = chromium_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield BrowserPage(context.new_page()).watch()
    finally:
        context.close()


@pytest.fixture
def screenshot(browser_page: BrowserPage, tmp_path: Path) -> Screenshot:
    """screenshot("overview") writes <tmp_path>/screenshots/overview.png of the whole page,
    and copies it into $FLUXO_SCREENSHOT_DIR when that is set (to refresh the README's)."""

    def take(name: str) -> Path:
        target = tmp_path / "screenshots" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        browser_page.page.screenshot(path=str(target), full_page=True)
        if published := os.environ.get(SCREENSHOT_DIR_ENV):
            Path(published).mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, Path(published) / target.name)
        return target

    return take


@pytest.fixture(scope="package")
def console_stack(kafka_bootstrap: str, postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Fluxo as `make run` starts it, with a model for every built-in task; one for
    the package (the browser and the page tests look at the same stack)."""
    began = time.monotonic()
    with running_stack(kafka_bootstrap, postgres_dsn, tmp_path_factory.mktemp("console-stack")) as stack:
        ready = time.monotonic()
        wait_for_models(stack)
        _browser_report["stack"] = (
            f"gateway ready in {ready - began:.1f} s, every built-in task's model in {time.monotonic() - began:.1f} s"
        )
        yield stack


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if "browser" in _browser_report:
        terminalreporter.write_line(f"browser: {_browser_report['browser']}")
    if "stack" in _browser_report:
        terminalreporter.write_line(f"console stack (python -m deploy.local): {_browser_report['stack']}")
