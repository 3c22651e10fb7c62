"""Headless Chromium (Debian's /usr/bin/chromium) through Playwright; never a downloaded
browser. Without chromium the tests fail with the install line, they are never skipped."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console_stack import ConsoleStack

CHROMIUM = os.environ.get("VEIL_CHROMIUM", "/usr/bin/chromium")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console tests need Debian's chromium"
            " (apt-get install -y chromium; .ci/run installs it)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ConsoleStack]:
    running = ConsoleStack(tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def page(browser: object, stack: ConsoleStack) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
    context.add_init_script(f"localStorage.setItem('veil.apiKey', {stack.api_key!r});")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
