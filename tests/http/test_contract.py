"""The HTTP contract, in-process: every endpoint, status and error body of docs/api.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from ml_service.model.artifact import read_manifest

NAMES = ["CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT"]
ROW = [0, 6.575, 296.0, 15.3, 396.9, 4.98]
JSON = {"content-type": "application/json"}


def post(client: TestClient, path: str, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=data, headers={**JSON, **headers})


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert set(body) <= {"error", "details"}
    for detail in body.get("details", []):
        assert set(detail) == {"loc", "msg"}
    return body


# --- prediction dialects


def test_original_sample_request(client: TestClient, sample: dict[str, Any]) -> None:
    response = post(client, "/predict", sample)
    assert response.status_code == 200
    [price] = response.json()["prediction"]
    assert 15 < price < 40


def test_three_dialects_agree_on_the_same_rows(client: TestClient) -> None:
    rows = [ROW, [1, 7.2, 242, 17.8, 392.8, 4.0], [0, 5.5, 666, 20.2, 100.0, 25.0]]
    original = post(client, "/predict", {n: [r[j] for r in rows] for j, n in enumerate(NAMES)})
    v1_objects = post(
        client,
        "/v1/models/housing:predict",
        {"instances": [dict(zip(NAMES, r, strict=True)) for r in rows]},
    )
    v1_lists = post(client, "/v1/models/housing:predict", {"inputs": rows})
    v2_matrix = post(
        client,
        "/v2/models/housing/infer",
        {"inputs": [{"name": "x", "shape": [3, 6], "datatype": "FP64", "data": rows}]},
    )
    v2_features = post(
        client,
        "/v2/models/housing/infer",
        {
            "inputs": [
                {"name": n, "shape": [3], "datatype": "FP32", "data": [r[j] for r in rows]}
                for j, n in enumerate(NAMES)
            ]
        },
    )
    expected = original.json()["prediction"]
    assert len(set(expected)) == 3
    assert v1_objects.json()["predictions"] == expected
    assert v1_lists.json()["predictions"] == expected
    assert v2_matrix.json()["outputs"][0]["data"] == expected
    assert v2_features.json()["outputs"][0]["data"] == expected


def test_v2_response_shape_and_id_echo(client: TestClient, model_dir: Path) -> None:
    version = read_manifest(model_dir).version
    body = {
        "id": "req-7",
        "parameters": {"x": 1},
        "outputs": [{"name": "predict"}],
        "inputs": [{"name": "input", "shape": [1, 6], "datatype": "FP64", "data": ROW}],
    }
    for path in ("/v2/models/housing/infer", f"/v2/models/housing/versions/{version}/infer"):
        answer = post(client, path, body).json()
        assert answer["model_name"] == "housing"
        assert answer["model_version"] == version
        assert answer["id"] == "req-7"
        [output] = answer["outputs"]
        assert output["name"] == "predict"
        assert output["datatype"] == "FP64"
        assert output["shape"] == [1]
    del body["id"]
    assert "id" not in post(client, "/v2/models/housing/infer", body).json()


def test_row_order_follows_the_first_features_keys(client: TestClient) -> None:
    body = {n: {"b": v, "a": v} for n, v in zip(NAMES, ROW, strict=True)}
    body["RM"] = {"b": 8.0, "a": 5.0}
    body["LSTAT"] = {"a": 30.0, "b": 3.0}
    expensive, cheap = post(client, "/predict", body).json()["prediction"]
    assert expensive > cheap


def test_no_content_type_is_read_as_json(client: TestClient, sample: dict[str, Any]) -> None:
    response = client.post("/predict", content=json.dumps(sample).encode())
    assert response.status_code == 200
    problem_json = post(client, "/predict", sample, **{"content-type": "application/problem+json"})
    assert problem_json.status_code == 200


# --- errors, in the contract's order


def test_unknown_path_model_and_version_are_404(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404)
    assert_error(post(client, "/v1/models/other:predict", {"instances": [ROW]}), 404)
    assert_error(post(client, "/v2/models/other/infer", {}), 404)
    assert_error(post(client, "/v2/models/housing/versions/0/infer", {}), 404)
    assert_error(client.get("/v1/models/other"), 404)
    assert_error(client.get("/v2/models/other"), 404)
    assert_error(client.get("/v2/models/housing/versions/0/ready"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/predict", "POST"),
        ("PUT", "/v1/models/housing:predict", "POST"),
        ("GET", "/v2/models/housing/infer", "POST"),
        ("POST", "/health/ready", "GET"),
        ("DELETE", "/v1/models/housing", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert_error(response, 405)
    assert allow in response.headers["allow"]


def test_non_json_content_type_is_415(client: TestClient, sample: dict[str, Any]) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        body = assert_error(post(client, "/predict", sample, **{"content-type": content_type}), 415)
        assert "application/json" in body["error"]


def test_binary_tensor_extension_is_415(client: TestClient) -> None:
    response = post(
        client, "/v2/models/housing/infer", b"\x00\x01", **{"inference-header-content-length": "0"}
    )
    assert "binary tensor extension" in assert_error(response, 415)["error"]


def test_415_wins_over_413_and_413_over_400(client: TestClient) -> None:
    big = b"{" * 1_100_000
    assert_error(post(client, "/predict", big, **{"content-type": "text/plain"}), 415)
    assert_error(post(client, "/predict", big), 413)


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    rows = [ROW] * 30_000
    body = json.dumps({"instances": rows}).encode()
    assert len(body) > 1_048_576
    assert (
        "1048576 bytes"
        in assert_error(post(client, "/v1/models/housing:predict", body), 413)["error"]
    )


def test_rows_over_the_limit_are_413(client: TestClient) -> None:
    body = {"instances": [[0, 6, 296, 15, 396, 5]] * 10_001}
    assert (
        "10001 rows" in assert_error(post(client, "/v1/models/housing:predict", body), 413)["error"]
    )
    ok = post(client, "/v1/models/housing:predict", {"instances": [ROW] * 10_000})
    assert len(ok.json()["predictions"]) == 10_000


@pytest.mark.parametrize(
    "raw",
    [
        b'{"CHAS": NaN}',
        b"\xef\xbb\xbf{}",
        b'{"RM": "\\ud800"}',
        b'{"RM": 1, "RM": 1}',
        b"[" * 33 + b"]" * 33,
        b'{"RM": [1,',
        b"",
    ],
)
def test_invalid_json_is_400_on_every_dialect(client: TestClient, raw: bytes) -> None:
    for path in ("/predict", "/v1/models/housing:predict", "/v2/models/housing/infer"):
        assert_error(post(client, path, raw), 400)


def test_schema_problems_are_422_with_every_location(client: TestClient) -> None:
    body = {
        "CHAS": {"0": 0, "1": 3},
        "RM": {"0": "x", "1": 6},
        "TAX": {"0": 1e400, "1": 1},
        "PTRATIO": {"0": 15, "1": 0},
        "B": {"0": 1, "1": True},
        "ZN": {"0": 1},
    }
    raw = json.dumps(body).replace("Infinity", "1e400").encode()
    details = assert_error(post(client, "/predict", raw), 422)["details"]
    locs = [tuple(d["loc"]) for d in details]
    assert set(locs) == {
        ("ZN",),
        ("LSTAT",),
        ("CHAS", "1"),
        ("RM", "0"),
        ("TAX", "0"),
        ("PTRATIO", "1"),
        ("B", "1"),
    }


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/predict", {n: {} for n in NAMES}, ["CHAS"]),
        ("/predict", {n: [1] if n != "RM" else {"0": 1} for n in NAMES}, ["RM"]),
        ("/predict", {n: [1, 2] if n != "TAX" else [1] for n in NAMES}, ["TAX"]),
        ("/v1/models/housing:predict", {"instances": []}, ["instances"]),
        ("/v1/models/housing:predict", {"instances": [ROW, ROW[:5]]}, ["instances", 1]),
        (
            "/v1/models/housing:predict",
            {"instances": [dict(zip(NAMES, ROW, strict=True)) | {"TAX": -1}]},
            ["instances", 0, "TAX"],
        ),
        (
            "/v2/models/housing/infer",
            {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": ROW[:5]}]},
            ["inputs", 0, "shape"],
        ),
        (
            "/v2/models/housing/infer",
            {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "BOOL", "data": ROW}]},
            ["inputs", 0, "datatype"],
        ),
        (
            "/v2/models/housing/infer",
            {"inputs": [{"name": "x", "shape": [2, 6], "datatype": "FP64", "data": ROW}]},
            ["inputs", 0, "data"],
        ),
        (
            "/v2/models/housing/infer",
            {
                "inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": ROW}],
                "outputs": [{"name": "proba"}],
            },
            ["outputs", 0, "name"],
        ),
    ],
)
def test_schema_violations_name_their_location(
    client: TestClient, path: str, body: Any, loc: list[Any]
) -> None:
    details = assert_error(post(client, path, body), 422)["details"]
    assert loc in [d["loc"] for d in details]


# --- probes, metadata, docs, page


def test_probes(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"live": True}
    assert client.get("/health/ready").json() == {"ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/housing/ready").json() == {"name": "housing", "ready": True}


def test_v1_model_card(client: TestClient, model_dir: Path) -> None:
    card = client.get("/v1/models/housing").json()
    assert card["name"] == "housing"
    assert card["ready"] is True
    assert card["version"] == read_manifest(model_dir).version
    assert [f["name"] for f in card["features"]] == NAMES
    rm = card["features"][1]
    assert (rm["min"], rm["max"]) == (0, 100)
    assert rm["description"]
    assert rm["unit"]
    assert set(card["metrics"]) == {"rmse", "mae", "r2"}
    assert len(card["training_data_sha256"]) == 64


def test_v2_metadata(client: TestClient, model_dir: Path) -> None:
    version = read_manifest(model_dir).version
    server = client.get("/v2").json()
    assert server["name"] == "ml-service"
    for path in ("/v2/models/housing", f"/v2/models/housing/versions/{version}"):
        meta = client.get(path).json()
        assert meta["name"] == "housing"
        assert meta["versions"] == [version]
        assert meta["platform"]
        assert meta["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]} for n in NAMES]
        assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def test_openapi_describes_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/", "get"),
        ("/predict", "post"),
        ("/v1/models/{name}", "get"),
        ("/v1/models/{name}:predict", "post"),
        ("/v2", "get"),
        ("/v2/health/live", "get"),
        ("/v2/health/ready", "get"),
        ("/v2/models/{name}", "get"),
        ("/v2/models/{name}/versions/{version}", "get"),
        ("/v2/models/{name}/ready", "get"),
        ("/v2/models/{name}/versions/{version}/ready", "get"),
        ("/v2/models/{name}/infer", "post"),
        ("/v2/models/{name}/versions/{version}/infer", "post"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], path
    infer = paths["/predict"]["post"]
    assert "requestBody" in infer
    assert {"200", "400", "413", "415", "422"} <= set(infer["responses"])
    assert client.get("/docs").status_code == 200


def test_home_page_keeps_the_heading_and_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "<h3>Sklearn Prediction Home</h3>" in page.text
    # The fields are drawn in the browser from the card, which lists every feature.
    card = client.get("/v1/models/housing").json()
    assert [f["name"] for f in card["features"]] == NAMES
    assert all(f["description"] for f in card["features"])
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "http" not in policy
    assert "<script>" not in page.text


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert (
        client.get("/health/live", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/health/live", headers={"x-request-id": "bad id\n"}).headers[
        "x-request-id"
    ]
    assert generated != "bad id\n"
    assert len(generated) == 32
    assert client.post("/predict", content=b"{").headers["x-request-id"]


def test_metrics_count_requests(
    client: TestClient, sample: dict[str, Any], model_dir: Path
) -> None:
    version = read_manifest(model_dir).version
    post(client, "/predict", sample)
    text = client.get("/metrics").text
    assert (
        'ml_service_http_requests_total{dialect="original",method="POST",model="housing",'
        f'route="/predict",status="200",version="{version}"}}' in text
    )
    assert "ml_service_model_info" in text
