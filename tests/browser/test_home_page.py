"""The home page in a real browser on the housing model: drawn from the API, fill, submit, read;
errors by their field; CSV batch; the report."""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
from tests.browser.conftest import ROOT, Visit, write_csv
from tests.support.server import Server

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

README_IMAGE = ROOT / "docs" / "images" / "home.png"
DATA = ROOT / "data" / "housing.csv"
PRICE = re.compile(r"^\$\d{1,3}(,\d{3})*$")


def model_status(server: Server) -> dict[str, object]:
    status: dict[str, object] = httpx.get(server.url + "/v1/models/housing", timeout=10).json()
    return status


def plain_dollars(medv: float) -> str:
    """MEDV in $1000s as the page shows it: 24.137 → "$24,100"."""
    return f"${round(medv * 1000 / 100) * 100:,}"


def test_page_is_drawn_from_the_api_and_stays_on_this_host(visit: Visit, server: Server) -> None:
    page = visit.page
    response = page.goto("/")
    assert response is not None
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    html = response.text()
    assert "<h3>Sklearn Prediction Home</h3>" in html
    assert "style=" not in html
    assert re.findall(r"<script(?![^>]*(?:src=|application/json))", html) == []
    status = model_status(server)
    features = status["features"]
    assert isinstance(features, list)
    # The shell carries no model data: the page asks the API for it.
    assert str(status["version"]) not in html
    assert all(f'"{feature["name"]}"' not in html for feature in features)
    visit.ready()
    page.wait_for_load_state("networkidle")
    assert page.title() == "ml-service: housing"
    assert page.locator("#model-picker-form").is_hidden()
    for feature in features:
        control = page.get_by_label(re.compile(rf"^{feature['name']}\b"))
        assert control.count() == 1, feature["name"]
        assert (
            feature["description"] in page.locator(f"label[for=f-{feature['name']}]").inner_text()
        )
        help_text = page.locator(f"#f-{feature['name']}-help").inner_text()
        assert feature["unit"] in help_text
        if control.evaluate("e => e.tagName") == "INPUT":
            assert float(control.get_attribute("min")) == feature["min"]
            assert float(control.get_attribute("max")) == feature["max"]
    assert page.locator("button.sample").count() >= 2
    assert page.locator("#card").get_by_text(str(status["version"])).count() >= 1
    headers = page.locator("#metrics-table thead th").all_inner_texts()
    assert headers == ["split", "RMSE", "MAE", "R²"]
    held_out = page.locator("#metrics-table tbody tr").first.locator("td").all_inner_texts()
    metrics = status["metrics"]
    assert isinstance(metrics, dict)
    assert held_out == [f"{metrics[m]:.3f}" for m in ("rmse", "mae", "r2")]
    assert "±" in page.locator("#metrics-table tbody tr").nth(1).inner_text()
    visit.plots_shown(4)
    alts = page.eval_on_selector_all("#card img", "imgs => imgs.map(i => i.alt)")
    assert "Residuals" in " ".join(alts)

    # Plots are fetched from the API, then shown from blob: URLs of this same origin.
    origins = (server.url, f"blob:{server.url}")
    assert all(url.startswith(origins) for url in visit.requests), visit.requests
    assert visit.console_errors == []
    assert visit.page_errors == []
    visit.screenshot("home")


def test_sample_house_is_predicted_in_plain_units(visit: Visit, server: Server) -> None:
    page = visit.page
    page.goto("/")
    page.get_by_role("button", name="Fill with sample 1").click()
    assert page.locator("#f-RM").input_value() == "6.575"
    assert "$24,000" in page.locator("#result").inner_text()  # the house's actual value
    page.get_by_role("button", name="Predict", exact=True).click()
    shown = page.locator("#prediction").inner_text()
    assert PRICE.match(shown), shown

    example = {"CHAS": 0, "RM": 6.575, "TAX": 296, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 4.98}
    api = httpx.post(
        server.url + "/v1/models/housing:predict", json={"instances": [example]}, timeout=10
    ).json()["predictions"][0]
    assert shown == plain_dollars(api)
    assert f"MEDV {api:.2f}" in page.locator("#result").inner_text()
    assert visit.console_errors == []
    visit.plots_shown(4)
    shot = visit.screenshot("prediction")
    if not README_IMAGE.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_IMAGE)


def test_keyboard_alone_reaches_every_control_and_predicts(visit: Visit) -> None:
    page = visit.page
    page.goto("/")
    visit.ready()
    order: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
        if order[-1] == "report-link":
            break
    features = page.eval_on_selector_all("#predict-form [name]", "els => els.map(e => e.id)")
    for control in [*features, "predict-button", "csv-file", "batch-button", "report-link"]:
        assert control in order, f"{control} is not reachable with Tab: {order}"
    assert order[0] == "sample"

    page.goto("/")  # focus starts again at the top of the page
    visit.ready()
    page.keyboard.press("Tab")  # the first sample button
    assert page.evaluate("document.activeElement.textContent") == "Fill with sample 1"
    page.keyboard.press("Enter")
    for _ in range(len(features) + 5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "predict-button":
            break
    page.keyboard.press("Enter")
    assert PRICE.match(page.locator("#prediction").inner_text())
    visit.screenshot("keyboard")


def test_bad_values_show_the_api_errors_next_to_their_fields(visit: Visit) -> None:
    page = visit.page
    page.goto("/")
    page.get_by_role("button", name="Fill with sample 2").click()
    page.locator("#f-RM").fill("0")
    page.locator("#f-TAX").fill("")
    page.get_by_role("button", name="Predict", exact=True).click()
    page.wait_for_selector("#f-RM[aria-invalid=true]")
    rm_error = page.locator("#f-RM-error")
    assert "RM must be > 0 and <= 100, got 0" in rm_error.inner_text()
    assert page.locator("#f-RM").get_attribute("aria-invalid") == "true"
    assert "must be a number, got null" in page.locator("#f-TAX-error").inner_text()
    assert page.locator("#f-LSTAT-error").inner_text() == ""
    assert page.locator("#f-LSTAT").get_attribute("aria-invalid") is None
    assert page.evaluate("document.activeElement.id") == "f-RM"
    assert page.locator("#prediction").count() == 0
    assert "schema" in page.locator("#form-error").inner_text()
    visit.screenshot("field-errors")


def test_csv_upload_predicts_good_rows_and_lists_bad_ones(visit: Visit, tmp_path: Path) -> None:
    with DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:7]
    rows[5]["RM"] = "0"
    rows[6]["TAX"] = "abc"
    upload = write_csv(tmp_path / "houses.csv", rows)

    page = visit.page
    page.goto("/")
    assert "ml-service score --model" in page.locator("#batch").inner_text()
    visit.upload(upload)
    page.locator("#batch-results").wait_for()
    assert visit.page_errors == []
    assert page.locator("#batch-results tbody tr").count() == 7
    status = page.locator("#batch-status").inner_text()
    assert "5 of 7 rows predicted" in status
    assert "Ignored columns: CRIM" in status
    problems = page.locator("#batch-problems li").all_inner_texts()
    assert len(problems) == 2
    assert problems[0].startswith("Row 6 (line 7): RM must be > 0")
    assert problems[1].startswith("Row 7 (line 8): TAX: must be a number, got a string")
    assert page.locator("#batch-results tr.bad").count() == 2
    visit.screenshot("batch")

    got = visit.download(tmp_path)
    assert len(got) == 7
    assert all(float(r["MEDV"]) > 0 for r in got[:5])
    assert got[5]["MEDV"] == ""
    assert "RM must be > 0" in got[5]["problems"]
    assert got[6]["TAX"] == "abc"


def test_report_is_linked_and_its_plots_load(visit: Visit, server: Server) -> None:
    page = visit.page
    page.goto("/")
    page.get_by_role("link", name="Full model report").click()
    page.wait_for_url(
        re.compile(f"{re.escape(server.url)}/models/housing/versions/[0-9a-f]+/report")
    )
    page.wait_for_load_state("networkidle")
    assert "Model report: housing" in page.locator("h1").inner_text()
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 4
    assert all(width > 0 for width in widths), widths
    assert visit.console_errors == []
    visit.screenshot("report")


def test_files_over_the_page_limits_point_to_the_command_line(visit: Visit, tmp_path: Path) -> None:
    with DATA.open(newline="") as handle:
        header, first = handle.readline(), handle.readline()
    page = visit.page
    page.goto("/")
    visit.ready()
    limits = page.evaluate("JSON.parse(document.getElementById('page-config').textContent).batch")
    many = tmp_path / "many.csv"
    many.write_text(header + first * (limits["maxRows"] + 1))
    visit.upload(many)
    status = page.locator("#batch-status")
    page.wait_for_function("() => document.getElementById('batch-status').textContent")
    assert f"has {limits['maxRows'] + 1:,} rows" in status.inner_text()
    assert "ml-service score" in status.inner_text()
    assert page.locator("#batch-results").count() == 0

    big = tmp_path / "big.csv"
    big.write_text(header + " " * limits["maxBytes"] + "\n")
    visit.upload(big)
    page.wait_for_function(
        "() => document.getElementById('batch-status').textContent.includes('bytes')"
    )
    assert "ml-service score" in status.inner_text()
    assert not [u for u in visit.requests if u.endswith(":predict")]
