"""The home page in a real browser on a repository of three models (housing the default, the
churn and penguin classifiers): the picker, selects for text features, "unknown" where a
feature may be missing, the label with every class's probability, a CSV with text and blanks."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.browser.conftest import ROOT, Visit, write_csv
from tests.conftest import Trained
from tests.support.repository import add_version
from tests.support.server import Server, running_server

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

CHURN_CSV = ROOT / "data" / "examples" / "churn.csv"
PERCENT = re.compile(r"^\d{1,3}\.\d%$")


@pytest.fixture(scope="module")
def server(
    model_dir: Path, churn: Trained, penguins: Trained, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    repository = tmp_path_factory.mktemp("page-repository")
    add_version(model_dir, repository, "v1", name="housing")
    add_version(churn.path, repository, "v1", name="churn")
    add_version(penguins.path, repository, "v1", name="penguins")
    env = {
        "ML_SERVICE_WORKERS": "1",
        "ML_SERVICE_LOG_LEVEL": "warning",
        "ML_SERVICE_MODEL_REPOSITORY": str(repository),
        "ML_SERVICE_DEFAULT_MODEL": "housing",
    }
    with running_server(None, tmp_path_factory.mktemp("browser-models"), env=env) as running:
        yield running


def card(server: Server, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{server.url}/v1/models/{name}", timeout=10).json()
    return answer


def predict(server: Server, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    url = f"{server.url}/v1/models/{name}:predict"
    answer: dict[str, Any] = httpx.post(url, json={"instances": rows}, timeout=10).json()
    return answer


def shown_probabilities(visit: Visit) -> dict[str, str]:
    rows = visit.page.locator("#probabilities tbody tr")
    return {
        rows.nth(i).locator("th").inner_text(): rows.nth(i).locator("td").inner_text()
        for i in range(rows.count())
    }


def test_the_picker_lists_every_model_the_default_first(visit: Visit) -> None:
    page = visit.page
    page.goto("/")
    visit.ready()
    assert page.locator("#model-picker option").all_inner_texts() == [
        "housing",
        "churn",
        "penguins",
    ]
    assert page.locator("#model-line strong").inner_text() == "housing"
    page.get_by_label("Model", exact=True).select_option("churn")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"/\?model=churn$"))
    visit.ready()
    assert page.locator("#model-line strong").inner_text() == "churn"
    assert page.locator("#model-picker").input_value() == "churn"
    assert page.title() == "ml-service: churn"

    page.goto("/?model=nosuch")
    page.locator("#notice p").wait_for()
    assert "no model named 'nosuch'" in page.locator("#notice").inner_text()
    assert page.locator("#model-picker-form").is_visible()
    assert visit.page_errors == []


def test_text_features_are_selects_and_missing_ones_can_be_unknown(
    visit: Visit, server: Server
) -> None:
    page = visit.page
    page.goto("/?model=churn")
    visit.ready()
    for feature in card(server, "churn")["features"]:
        control = page.locator(f"#f-{feature['name']}")
        tag = control.evaluate("e => e.tagName")
        options = control.locator("option").all_inner_texts()
        if feature["kind"] == "categorical":
            assert tag == "SELECT", feature["name"]
            unknown = ["unknown"] if feature["nullable"] else []
            assert options == ["choose…", *unknown, *feature["categories"]]
        else:
            assert tag == "INPUT", feature["name"]
            assert float(control.get_attribute("min")) == feature["min"]
            checkbox = page.get_by_label(f"Unknown {feature['name']}")
            assert checkbox.count() == (1 if feature["nullable"] else 0)
    assert page.locator("#metrics-table thead th").all_inner_texts() == [
        "split",
        "accuracy",
        "balanced accuracy",
        "log loss",
        "ROC AUC",
    ]
    visit.plots_shown(4)
    captions = page.locator("#plots figcaption").all_inner_texts()
    assert any("Confusion matrix" in c for c in captions)
    assert not any("Residuals" in c for c in captions)
    assert "classification into no, yes" in page.locator("#facts").inner_text()
    assert visit.console_errors == []


def test_a_classifier_shows_its_label_and_every_class_probability(
    visit: Visit, server: Server
) -> None:
    page = visit.page
    page.goto("/?model=churn")
    visit.ready()
    example = card(server, "churn")["examples"][0]
    page.get_by_role("button", name="Fill with sample 1").click()
    assert f"its actual churned was {example['churned']}" in page.locator("#result").inner_text()
    assert page.locator("#f-contract").input_value() == example["contract"]
    page.get_by_role("button", name="Predict", exact=True).click()
    page.locator("#probabilities").wait_for()
    row = {k: v for k, v in example.items() if k != "churned"}
    api = predict(server, "churn", [row])
    assert page.locator("#prediction").inner_text() == api["predictions"][0]
    shown = shown_probabilities(visit)
    assert list(shown) == ["no", "yes"]
    for label, p in api["probabilities"][0].items():
        assert shown[label] == f"{100 * p:.1f}%"
    visit.screenshot("classifier")

    # Unknown payment and monthly charges go as JSON null; the model fills them in.
    page.locator("#f-payment").select_option(label="unknown")
    page.get_by_label("Unknown monthly_charges").check()
    assert page.locator("#f-monthly_charges").is_disabled()
    with page.expect_response(re.compile(r":predict$")) as answered:
        page.get_by_role("button", name="Predict", exact=True).click()
    body = json.loads(answered.value.request.post_data or "{}")
    assert body["instances"][0]["payment"] is None
    assert body["instances"][0]["monthly_charges"] is None
    page.locator("#probabilities").wait_for()  # the form cleared the last answer on submit
    api = predict(server, "churn", [{**row, "payment": None, "monthly_charges": None}])
    assert page.locator("#prediction").inner_text() == api["predictions"][0]
    assert shown_probabilities(visit)["yes"] == f"{100 * api['probabilities'][0]['yes']:.1f}%"

    # A required choice left empty is named next to its field.
    page.locator("#f-contract").select_option(label="choose…")
    page.get_by_role("button", name="Predict", exact=True).click()
    page.wait_for_selector("#f-contract[aria-invalid=true]")
    assert "contract must be a string" in page.locator("#f-contract-error").inner_text()
    assert page.evaluate("document.activeElement.id") == "f-contract"


def test_a_three_class_model_lists_three_probabilities(visit: Visit) -> None:
    page = visit.page
    page.goto("/?model=penguins")
    visit.ready()
    page.get_by_role("button", name="Fill with sample 1").click()
    page.get_by_role("button", name="Predict", exact=True).click()
    page.locator("#probabilities").wait_for()
    shown = shown_probabilities(visit)
    assert list(shown) == ["Adelie", "Chinstrap", "Gentoo"]
    assert all(PERCENT.match(p) for p in shown.values()), shown
    assert page.locator("#prediction").inner_text() in shown
    chosen = page.locator("#probabilities tr.chosen th").inner_text()
    assert chosen == page.locator("#prediction").inner_text()


def test_csv_with_text_and_blank_cells_gets_labels_and_probabilities(
    visit: Visit, tmp_path: Path
) -> None:
    with CHURN_CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:8]
    rows[1]["payment"] = ""  # blank: missing, which payment may be
    rows[2]["monthly_charges"] = "NA"  # a missing-value token, as training reads it
    rows[3]["contract"] = "weekly"  # not a category
    rows[4]["tenure"] = "abc"  # text for a number
    rows[5]["paperless"] = ""  # blank where the feature may not be missing
    upload = write_csv(tmp_path / "customers.csv", rows)

    page = visit.page
    page.goto("/?model=churn")
    visit.ready()
    visit.upload(upload)
    page.locator("#batch-results").wait_for()
    assert visit.page_errors == []
    status = page.locator("#batch-status").inner_text()
    assert "5 of 8 rows predicted; 3 with problems" in status
    assert "Ignored columns: customer, churned" in status
    problems = page.locator("#batch-problems li").all_inner_texts()
    assert len(problems) == 3
    assert problems[0].startswith("Row 4 (line 5): contract must be one of")
    assert "'weekly'" in problems[0]
    assert problems[1].startswith("Row 5 (line 6): tenure: must be a number, got a string")
    assert problems[2].startswith("Row 6 (line 7): paperless must be a string")
    header = page.locator("#batch-results thead th").all_inner_texts()
    assert header[-4:] == ["churned", "probability_no", "probability_yes", "problems"]
    visit.screenshot("classifier-batch")

    got = visit.download(tmp_path)
    assert len(got) == 8
    for i in (0, 1, 2, 6, 7):
        assert got[i]["churned"] in ("no", "yes")
        total = float(got[i]["probability_no"]) + float(got[i]["probability_yes"])
        assert abs(total - 1) < 1e-6
        assert got[i]["problems"] == ""
    assert got[1]["payment"] == ""
    assert got[3]["churned"] == ""
    assert got[3]["probability_yes"] == ""
    assert "contract must be one of" in got[3]["problems"]
