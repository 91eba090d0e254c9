"""The OpenAPI document and the interactive docs: generated from the served models, served
from this host only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from starlette.testclient import TestClient
from tests.conftest import make_client

from ml_service.http.page import STATIC

DOCS = STATIC / "docs"


def test_the_document_describes_the_served_models_schema(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    predict = document["paths"]["/predict"]["post"]
    schema = predict["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT"]
    rm = schema["properties"]["RM"]["oneOf"][1]["items"]
    assert rm["exclusiveMinimum"] == 0
    assert rm["maximum"] == 100
    v1 = document["paths"]["/v1/models/{name}:predict"]["post"]
    (parameter,) = v1["parameters"]
    assert parameter["schema"]["enum"] == ["housing"]
    assert set(v1["requestBody"]["content"]["application/json"]["examples"]) == {"housing"}
    assert "/v2/repository/models/{name}/load" in document["paths"]


def test_a_categorical_model_is_described_with_its_categories(tmp_path: Path) -> None:
    from ml_service.model.build import build_model
    from ml_service.model.training import TrainSettings

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "churn"
    settings = TrainSettings(target="churned", families=("linear",))
    build_model(root / "data" / "examples" / "churn.csv", out, settings)
    with make_client(out) as client:
        document = client.get("/openapi.json").json()
    v1 = document["paths"]["/v1/models/{name}:predict"]["post"]
    instance = v1["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "instances"
    ]["items"]["oneOf"][0]
    assert instance["properties"]["contract"]["enum"] == ["month-to-month", "one year", "two year"]
    answer = v1["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["predictions"]["items"]["enum"] == ["no", "yes"]
    assert "probabilities" in answer["required"]


def test_the_docs_page_uses_only_local_pinned_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "http" not in policy
    assert "<script>" not in page.text
    assert "//" not in page.text.replace("<!doctype html>", "").split("<body>")[1]
    record = json.loads((DOCS / "SOURCE.json").read_text())
    for name, digest in record["files"].items():
        assert hashlib.sha256((DOCS / name).read_bytes()).hexdigest() == digest, name
        if not name.startswith("LICENSE"):
            served = client.get(f"/static/docs/{name}")
            assert served.status_code == 200
            assert hashlib.sha256(served.content).hexdigest() == digest


def test_the_docs_can_be_switched_off(model_dir: Path) -> None:
    with make_client(model_dir, docs=False) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
