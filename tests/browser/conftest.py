"""Headless Debian chromium driven by Playwright, against a real `ml-service serve`.

Chromium comes from Debian (`scripts/ensure-apt.sh chromium`), not from `playwright install`.
Without it the browser tests are skipped here, but fail on CI (`CI=true`), where it must exist.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.support.server import Server, running_server

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, and
# later tests must be free to call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install it with scripts/ensure-apt.sh chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"ML_SERVICE_WORKERS": "1", "ML_SERVICE_LOG_LEVEL": "warning"}
    with running_server(model_dir, tmp_path_factory.mktemp("browser"), env=env) as running:
        yield running


@dataclass
class Visit:
    """A page plus everything it asked for and complained about."""

    page: Any
    requests: list[str] = field(default_factory=list)
    authorized: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def saw(self, request: Any) -> None:
        self.requests.append(request.url)
        if "authorization" in request.headers:
            self.authorized.append(request.url)

    def ready(self) -> None:
        """Wait until the page has drawn its model from the API."""
        self.page.locator("#model").wait_for(state="visible")

    def upload(self, path: Path) -> None:
        """Send a CSV file through the page's batch form."""
        self.page.locator("#csv-file").set_input_files(str(path))
        self.page.get_by_role("button", name="Predict the file").click()

    def download(self, tmp_path: Path) -> list[dict[str, str]]:
        """The last batch's predictions, downloaded as the page offers them."""
        with self.page.expect_download() as download_info:
            self.page.get_by_role("button", name="Download the predictions as CSV").click()
        saved = tmp_path / "predictions.csv"
        download_info.value.save_as(saved)
        with saved.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def plots_shown(self, count: int) -> None:
        """Wait until `count` plots of the model card have loaded."""
        self.page.wait_for_function(
            "n => [...document.querySelectorAll('#plots img')].filter(i => i.naturalWidth > 0)"
            ".length === n",
            arg=count,
        )

    def screenshot(self, name: str) -> Path:
        """Keep a full-page screenshot of the current state as a test artifact."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@contextmanager
def visiting(browser: Any, server: Server) -> Iterator[Visit]:
    """A fresh browser context (its own session storage) on `server`."""
    context = browser.new_context(
        base_url=server.url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    seen = Visit(page)
    page.on("request", seen.saw)
    page.on(
        "console",
        lambda message: (
            seen.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    try:
        yield seen
    finally:
        context.close()


@pytest.fixture
def visit(browser: Any, server: Server) -> Iterator[Visit]:
    """The page on this module's `server`."""
    with visiting(browser, server) as seen:
        yield seen
