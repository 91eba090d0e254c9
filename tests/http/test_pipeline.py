"""What every request goes through once: ids, API keys, load shedding, the catch-all 500, the
log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from tests.conftest import SAMPLE, make_client

from ml_service.config import Settings
from ml_service.http.app import create_app
from ml_service.http.codecs.original import Original

KEY = "test-api-key-0123456789"
OTHER = "another-api-key-987654321"


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    body: dict[str, Any] = response.json()
    assert set(body) <= {"error", "details"}
    return body


def test_an_unexpected_exception_is_a_logged_json_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("the encoder broke")

    monkeypatch.setattr(Original, "encode", broken)
    with caplog.at_level(logging.ERROR, logger="ml_service.http"):
        response = client.post("/predict", json=SAMPLE)
    body = assert_json_error(response, 500)
    assert body == {"error": "internal error; the server logged the details"}
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "the encoder broke" in record.getMessage()
    assert record.exc_info is not None
    # The next request is answered normally.
    monkeypatch.undo()
    assert client.post("/predict", json=SAMPLE).status_code == 200


@pytest.fixture(scope="module")
def keyed(model_dir: Path) -> Iterator[TestClient]:
    with make_client(model_dir, api_keys=f"{KEY},{OTHER}") as test_client:
        yield test_client


@pytest.mark.parametrize(
    "path", ["/predict", "/v1/models/housing:predict", "/v2/models/housing/infer"]
)
def test_with_keys_on_predictions_need_one(keyed: TestClient, path: str) -> None:
    body = assert_json_error(keyed.post(path, json={}), 401)
    assert "API key" in body["error"]
    assert keyed.post(path, json={}).headers["www-authenticate"] == "Bearer"
    wrong = keyed.post(path, json={}, headers={"authorization": "Bearer not-a-key-at-all"})
    assert "not valid" in assert_json_error(wrong, 401)["error"]


def test_a_key_goes_as_a_bearer_token_or_in_x_api_key(keyed: TestClient) -> None:
    assert keyed.post(
        "/predict", json=SAMPLE, headers={"authorization": f"Bearer {KEY}"}
    ).is_success
    assert keyed.post(
        "/predict", json=SAMPLE, headers={"authorization": f"bearer {OTHER}"}
    ).is_success
    assert keyed.post("/predict", json=SAMPLE, headers={"x-api-key": KEY}).is_success


def test_401_comes_before_everything_else(keyed: TestClient) -> None:
    assert keyed.get("/no/such/path").status_code == 401
    assert keyed.get("/predict").status_code == 401
    assert (
        keyed.post("/predict", content=b"{", headers={"content-type": "text/csv"}).status_code
        == 401
    )
    with_key = {"authorization": f"Bearer {KEY}"}
    assert keyed.get("/no/such/path", headers=with_key).status_code == 404
    assert keyed.get("/predict", headers=with_key).status_code == 405


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/health/live", True),
        ("/health/ready", True),
        ("/v2/health/ready", True),
        ("/", True),
        ("/static/app.js", True),
        ("/metrics", False),
        ("/v1/models/housing", False),
        ("/v2/models/housing", False),
        ("/model/report", False),
        ("/openapi.json", False),
    ],
)
def test_probes_and_the_page_shell_stay_public(keyed: TestClient, path: str, public: bool) -> None:
    status = keyed.get(path).status_code
    assert (status == 200) if public else (status == 401)
    assert keyed.get(path, headers={"authorization": f"Bearer {KEY}"}).status_code == 200


def test_keys_never_reach_the_log(keyed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        keyed.post("/predict", json=SAMPLE, headers={"authorization": f"Bearer {KEY}"})
        keyed.post("/predict", json=SAMPLE, headers={"x-api-key": "a-wrong-key-0123456789"})
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert KEY not in text
    assert "a-wrong-key" not in text


def test_inputs_are_logged_as_digests_unless_asked_for(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def logged(**settings: object) -> dict[str, Any]:
        with make_client(model_dir, **settings) as test_client:
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="ml_service.http"):
                assert test_client.post("/predict", json=SAMPLE).status_code == 200
        (record,) = [r for r in caplog.records if getattr(r, "event", "") == "request"]
        fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
        return fields

    quiet = logged()
    assert "inputs" not in quiet
    assert len(quiet["inputs_sha256"]) == 64
    loud = logged(log_inputs=True)
    assert loud["inputs"].tolist() == [[SAMPLE[n]["0"] for n in SAMPLE]]
    assert loud["model"] == "housing"


def test_past_the_cap_on_requests_in_progress_the_worker_sheds_load(model_dir: Path) -> None:
    """One request is held while it uploads its body; a second one is refused with 503 and
    Retry-After, while the probes still answer."""
    app = create_app(Settings(model_dir=model_dir, max_in_progress=1))
    body = json.dumps(SAMPLE).encode()

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        release = asyncio.Event()

        async def slow_body() -> Any:
            await release.wait()
            yield body

        transport = httpx.ASGITransport(app=app)
        async with (
            app.state.running(),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            held = asyncio.create_task(client.post("/predict", content=slow_body()))
            while app.state.tally.in_flight < 1:
                await asyncio.sleep(0)
            refused = await client.post("/predict", content=body)
            probe = await client.get("/health/live")
            release.set()
            return await held, refused, probe

    held, refused, probe = asyncio.run(scenario())
    assert held.status_code == 200
    error = assert_json_error(refused, 503)
    assert "busy" in error["error"]
    assert refused.headers["retry-after"] == "1"
    assert probe.status_code == 200


def test_past_the_bytes_in_progress_large_bodies_wait_and_small_ones_go_on(
    model_dir: Path,
) -> None:
    """A large upload holds the worker's byte budget; another large one is asked to retry, a
    one-row request is still answered."""
    rows = 2000
    big = json.dumps({n: [SAMPLE[n]["0"]] * rows for n in SAMPLE}).encode()
    small = json.dumps(SAMPLE).encode()
    settings = Settings(
        model_dir=model_dir, max_body_bytes=len(big) + 10, max_body_bytes_in_progress=len(big) + 500
    )
    app = create_app(settings)

    async def scenario() -> tuple[httpx.Response, ...]:
        release = asyncio.Event()

        async def slow_body() -> Any:
            await release.wait()
            yield big

        transport = httpx.ASGITransport(app=app)
        async with (
            app.state.running(),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            headers = {"content-length": str(len(big))}
            held = asyncio.create_task(
                client.post("/predict", content=slow_body(), headers=headers)
            )
            while app.state.budget.held < len(big):
                await asyncio.sleep(0)
            refused = await client.post("/predict", content=big)
            answered = await client.post("/predict", content=small)
            release.set()
            done = await held
            after = await client.post("/predict", content=big)
            return done, refused, answered, after

    held, refused, answered, after = asyncio.run(scenario())
    assert held.status_code == 200
    assert len(held.json()["prediction"]) == rows
    assert "bytes of requests in progress" in assert_json_error(refused, 503)["error"]
    assert refused.headers["retry-after"] == "1"
    assert answered.status_code == 200
    assert after.status_code == 200, "the budget is given back once answered"
    assert app.state.budget.held == 0
