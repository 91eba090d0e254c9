"""The metadata endpoints in-process: KServe V1 list models, and the V1 model card with what a
client (and the home page) needs to draw a form, fill it with samples and judge the model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import Trained, make_client
from tests.support.repository import add_version

from ml_service.model.artifact import MANIFEST
from ml_service.model.report import REPORT_DIR, REPORT_FILE, plots_for


@pytest.fixture(scope="module")
def repository(model_dir: Path, churn: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("endpoints")
    add_version(model_dir, root, "v1", name="housing")
    add_version(churn.path, root, "v1", name="churn")
    bare = add_version(model_dir, root, "v1", name="bare")
    manifest = json.loads((bare / MANIFEST).read_text())
    for name in [f for f in manifest["files"] if f == REPORT_FILE or f.startswith(REPORT_DIR)]:
        del manifest["files"][name]
    (bare / MANIFEST).write_text(json.dumps(manifest))
    (bare / REPORT_FILE).unlink()
    shutil.rmtree(bare / REPORT_DIR)
    return root


@pytest.fixture(scope="module")
def client(repository: Path) -> Iterator[TestClient]:
    with make_client(None, model_repository=repository, default_model="housing") as test_client:
        yield test_client


def v1_card(client: TestClient, name: str) -> dict[str, Any]:
    response = client.get(f"/v1/models/{name}")
    assert response.status_code == 200, response.text
    card: dict[str, Any] = response.json()
    return card


def test_list_models_names_the_default_first(client: TestClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert response.json() == {"models": ["housing", "bare", "churn"]}


def test_list_models_without_a_default_is_sorted(repository: Path) -> None:
    with make_client(None, model_repository=repository) as test_client:
        assert test_client.get("/v1/models").json() == {"models": ["bare", "churn", "housing"]}


def test_list_models_is_503_until_the_models_are_loaded(model_dir: Path) -> None:
    loading = make_client(model_dir)  # lifespan not started: still loading
    response = loading.get("/v1/models")
    assert response.status_code == 503
    assert "still loading" in response.json()["error"]


def test_a_regressor_card_has_the_form_samples_and_quality(client: TestClient) -> None:
    card = v1_card(client, "housing")
    assert card["task"] == "regression"
    assert card["classes"] is None
    assert card["description"]
    assert card["algorithm"].startswith("scikit-learn ")
    assert set(card["metrics"]) == {"rmse", "mae", "r2"}
    assert {f"{m}_{s}" for m in ("rmse", "mae", "r2") for s in ("mean", "std")} == set(
        card["cv_metrics"]
    )
    assert card["intended_use"]
    assert card["caveats"]
    assert card["training_data"]["rows"] == 506
    assert card["training_data_sha256"] == card["training_data"]["sha256"]
    features = {f["name"]: f for f in card["features"]}
    assert features["CHAS"]["allowed"] == [0, 1]
    assert (features["CHAS"]["min"], features["CHAS"]["max"]) == (0, 1)
    assert features["RM"]["accepted"] == "> 0 and <= 100"
    assert features["RM"]["allowed"] is None
    assert features["RM"]["train_min"] <= features["RM"]["train_max"]
    # The samples are rows a client can send back as instances, with the actual value beside.
    names = [f["name"] for f in card["features"]]
    assert len(card["examples"]) >= 2
    instances = [{n: e[n] for n in names} for e in card["examples"]]
    answer = client.post("/v1/models/housing:predict", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    assert all("MEDV" in e for e in card["examples"])


def test_a_regressor_card_links_its_report_and_plots(client: TestClient) -> None:
    card = v1_card(client, "housing")
    assert card["report"] == "/models/housing/versions/v1/report"
    assert [p["url"].rsplit("/", 1)[1] for p in card["plots"]] == [
        p.file for p in plots_for("regression")
    ]
    for plot in card["plots"]:
        assert plot["title"]
        assert plot["alt"]
        image = client.get(plot["url"])
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/svg+xml"
    assert client.get(card["report"]).status_code == 200


def test_a_model_without_a_report_says_so(client: TestClient) -> None:
    card = v1_card(client, "bare")
    assert card["report"] is None
    assert card["plots"] == []


def test_a_classifier_card_has_its_classes_kinds_and_metrics(client: TestClient) -> None:
    card = v1_card(client, "churn")
    assert card["task"] == "classification"
    assert card["classes"] == ["no", "yes"]
    assert card["target"]["classes"] == ["no", "yes"]
    assert set(card["metrics"]) == {"accuracy", "balanced_accuracy", "log_loss", "roc_auc"}
    assert "log_loss_mean" in card["cv_metrics"]
    features = {f["name"]: f for f in card["features"]}
    contract = features["contract"]
    assert contract["kind"] == "categorical"
    assert contract["categories"] == ["month-to-month", "one year", "two year"]
    assert (contract["min"], contract["max"], contract["allowed"]) == (None, None, None)
    assert contract["accepted"].startswith("one of 'month-to-month'")
    assert features["payment"]["nullable"] is True
    assert features["monthly_charges"]["nullable"] is True
    assert features["tenure"]["nullable"] is False
    assert [p["url"].rsplit("/", 1)[1] for p in card["plots"]] == [
        p.file for p in plots_for("classification")
    ]
    assert {e["churned"] for e in card["examples"]} == {"no", "yes"}
