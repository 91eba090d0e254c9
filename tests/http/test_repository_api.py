"""The model repository extension in-process: index, load, unload, the admin token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import make_client
from tests.support.repository import add_version, stamp

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
SAMPLE = json.loads((Path(__file__).resolve().parents[2] / "data/sample_request.json").read_text())


@pytest.fixture
def repository(model_dir: Path, tmp_path: Path) -> Path:
    add_version(model_dir, tmp_path, "v1", created_at=stamp(1))
    return tmp_path


@pytest.fixture
def client(repository: Path) -> Iterator[TestClient]:
    with make_client(None, model_repository=repository, admin_token=TOKEN) as test_client:
        yield test_client


def index(client: TestClient, body: Any = None) -> list[dict[str, str]]:
    response = client.post("/v2/repository/index", headers=ADMIN, json=body)
    assert response.status_code == 200, response.text
    result: list[dict[str, str]] = response.json()
    return result


def served_version(client: TestClient) -> str:
    response = client.post("/predict", json=SAMPLE)
    assert response.status_code == 200, response.text
    assert response.headers["x-model-name"] == "housing"
    return response.headers["x-model-version"]


def test_the_index_lists_every_version_with_its_state(client: TestClient) -> None:
    assert index(client) == [{"name": "housing", "version": "v1", "state": "READY", "reason": ""}]
    assert index(client, {"ready": True}) == index(client)


def test_load_serves_the_newest_version_at_once(
    client: TestClient, repository: Path, model_dir: Path
) -> None:
    assert served_version(client) == "v1"
    add_version(model_dir, repository, "v2", created_at=stamp(2))
    response = client.post("/v2/repository/models/housing/load", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "housing", "versions": ["v1", "v2"], "default": "v2"}
    assert served_version(client) == "v2"
    v1 = client.post("/v2/models/housing/versions/v1/infer", json=_v2_body())
    assert v1.json()["model_version"] == "v1"
    assert client.get("/v2/models/housing").json()["versions"] == ["v1", "v2"]


def test_a_broken_new_version_is_refused_naming_the_file(
    client: TestClient, repository: Path, model_dir: Path
) -> None:
    broken = add_version(model_dir, repository, "v2", created_at=stamp(2))
    (broken / "schema.json").write_text("{}")
    response = client.post("/v2/repository/models/housing/load", headers=ADMIN)
    assert response.status_code == 409
    error = response.json()["error"]
    assert "schema.json: truncated" in error
    assert "version 'v1' serves" in error
    assert served_version(client) == "v1"
    states = {e["version"]: (e["state"], e["reason"]) for e in index(client)}
    assert states["v1"] == ("READY", "")
    assert states["v2"][0] == "UNAVAILABLE"
    assert "schema.json" in states["v2"][1]


def test_unload_then_load_again(client: TestClient) -> None:
    response = client.post("/v2/repository/models/housing/unload", headers=ADMIN, json={})
    assert response.status_code == 200, response.text
    assert (
        client.post("/v1/models/housing:predict", json={"instances": [_row()]}).status_code == 404
    )
    assert index(client) == [
        {"name": "housing", "version": "", "state": "UNAVAILABLE", "reason": "unloaded"}
    ]
    assert client.post("/v2/repository/models/housing/load", headers=ADMIN).status_code == 200
    assert served_version(client) == "v1"


def test_unknown_models_are_404(client: TestClient) -> None:
    for action in ("load", "unload"):
        response = client.post(f"/v2/repository/models/nope/{action}", headers=ADMIN)
        assert response.status_code == 404, response.text
        assert "nope" in response.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": TOKEN}],
)
def test_the_repository_api_needs_the_admin_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    for path in ("/v2/repository/index", "/v2/repository/models/housing/load"):
        response = client.post(path, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "admin token" in response.json()["error"]


def test_without_an_admin_token_the_repository_api_is_off(repository: Path) -> None:
    with make_client(None, model_repository=repository) as client:
        response = client.post("/v2/repository/index", headers=ADMIN)
        assert response.status_code == 403
        assert "ML_SERVICE_ADMIN_TOKEN" in response.json()["error"]


def _row() -> list[float]:
    return [0, 6.575, 296.0, 15.3, 396.9, 4.98]


def _v2_body() -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": _row()}]}
