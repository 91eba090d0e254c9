"""The home page in a real browser with API keys on: the shell loads without a key, the page
asks for one once (in its own dialog), keeps it for the tab, sends it as a bearer token with
every call, and forgets it on request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from tests.browser.conftest import Visit
from tests.support.server import Server, running_server

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

KEY = "page-test-key-0123456789"
STORE = "ml-service.api-key"


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"ML_SERVICE_WORKERS": "1", "ML_SERVICE_LOG_LEVEL": "warning", "ML_SERVICE_API_KEYS": KEY}
    with running_server(model_dir, tmp_path_factory.mktemp("browser-keys"), env=env) as running:
        yield running


def stored(visit: Visit) -> str | None:
    value: str | None = visit.page.evaluate(f"sessionStorage.getItem('{STORE}')")
    return value


def enter_key(visit: Visit, key: str) -> None:
    dialog = visit.page.get_by_role("dialog", name="API key needed")
    dialog.wait_for()
    assert visit.page.evaluate("document.activeElement.id") == "key-input"
    visit.page.keyboard.type(key)
    visit.page.keyboard.press("Enter")


def test_the_shell_is_public_and_carries_no_model_data(server: Server) -> None:
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200
    assert "<h3>Sklearn Prediction Home</h3>" in page.text
    assert "housing" not in page.text
    assert "LSTAT" not in page.text
    assert httpx.get(server.url + "/static/app.js", timeout=10).status_code == 200
    assert httpx.get(server.url + "/v1/models", timeout=10).status_code == 401


def test_the_page_asks_once_then_works_and_forgets(visit: Visit, server: Server) -> None:
    page = visit.page
    page.goto("/")
    enter_key(visit, "not-the-key-0123456789")
    # The refusal arrives with the answer to the page's first API call; expect() waits for it.
    expect(page.locator("#key-error")).to_contain_text("refused that key")
    enter_key(visit, KEY)
    visit.ready()
    assert stored(visit) == KEY
    assert page.get_by_role("dialog").count() == 0
    visit.plots_shown(4)
    page.get_by_role("button", name="Fill with sample 1").click()
    page.get_by_role("button", name="Predict", exact=True).click()
    assert re.match(r"^\$\d", page.locator("#prediction").inner_text())
    assert page.locator("#report-key-note").is_visible()
    api_calls = [u for u in visit.requests if "/v1/" in u or "/report/" in u]
    assert set(api_calls) <= set(visit.authorized)  # every API call carried the key
    assert f"{server.url}/v1/models/housing:predict" in visit.authorized

    # The key lasts for the tab: a reload asks nothing.
    page.reload()
    visit.ready()
    assert page.get_by_role("dialog").count() == 0
    assert page.locator("#key-line").is_visible()

    page.get_by_role("button", name="Forget the API key").click()
    page.get_by_role("dialog", name="API key needed").wait_for()
    assert stored(visit) is None
    page.keyboard.press("Escape")
    # The notice follows the refused call's answer, which is read after the dialog closes.
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text("needs an API key")
    expect(page.locator("#model")).to_be_hidden()
    page.get_by_role("button", name="Enter an API key").click()
    enter_key(visit, KEY)
    visit.ready()
    assert visit.page_errors == []
    visit.screenshot("keys")
