"""The route table's router: fixed paths by one lookup, with the answers the walk would give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount
from starlette.testclient import TestClient

from ml_service.config import Settings
from ml_service.http.app import Route, TableRouter, create_app


class answering:  # noqa: N801 - read as a phrase: answering("fixed")
    """A raw ASGI endpoint that answers its text and path parameters."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def __call__(self, scope: Any, _receive: Any, send: Any) -> None:
        body = f"{self.text} {scope['path_params']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def test_the_service_finds_its_fixed_paths_by_lookup(model_dir: Path) -> None:
    router = create_app(Settings(model_dir=model_dir)).router
    assert isinstance(router, TableRouter)
    assert {"/predict", "/health/live", "/health/ready", "/metrics", "/v1/models"} <= set(
        router.fixed
    )
    assert not any("{" in path for path in router.fixed)


def test_a_fixed_path_an_earlier_route_takes_is_left_to_the_walk() -> None:
    router = TableRouter(
        [
            Route("/items/{name:model}", answering("named"), methods=["GET"]),
            Route("/items/fixed", answering("fixed"), methods=["GET"]),
            Route("/other", answering("other"), methods=["POST"]),
            Mount("/static", answering("mounted")),
            Route("/static/file", answering("shadowed"), methods=["GET"]),
        ]
    )
    assert set(router.fixed) == {"/other"}
    client = TestClient(router)
    assert client.get("/items/fixed").text == "named {'name': 'fixed'}"
    assert client.post("/other").text == "other {}"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/predict", 405), ("POST", "/health/live", 405), ("GET", "/nowhere", 404)],
)
def test_other_methods_and_paths_get_the_walks_answers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
