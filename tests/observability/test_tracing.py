"""Tracing is off by default, refuses to half-start, and spans carry the response status."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ml_service.config import Settings
from ml_service.http.app import create_app
from ml_service.observability.tracing import TracingMiddleware, TracingUnavailable, instrument


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# The tracing extra's exporter; the SDK alone may come with other libraries (MLflow's client).
EXPORTER = _installed("opentelemetry.exporter.otlp.proto.http")


async def hello(scope: Any, receive: Any, send: Any) -> None:
    status = 503 if scope["path"] == "/down" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_without_an_endpoint_the_app_is_returned_untouched() -> None:
    assert instrument(hello, Settings()) is hello  # type: ignore[call-arg]


@pytest.mark.skipif(EXPORTER, reason="the tracing extra is installed")
def test_an_endpoint_without_the_sdk_names_the_extra_to_install() -> None:
    settings = Settings(otlp_endpoint="http://127.0.0.1:4318")  # type: ignore[call-arg]
    with pytest.raises(TracingUnavailable, match=r"ml-service\[tracing\]"):
        instrument(hello, settings)


@pytest.mark.skipif(EXPORTER, reason="the tracing extra is installed")
def test_the_service_refuses_to_start_half_traced() -> None:
    settings = Settings(otlp_endpoint="http://127.0.0.1:4318")  # type: ignore[call-arg]
    with pytest.raises(TracingUnavailable):
        create_app(settings)


class FakeSpan:
    def __init__(self, name: str, kind: Any) -> None:
        self.name = name
        self.kind = kind
        self.attributes: dict[str, object] = {}
        self.status: Any = None

    def set_attribute(self, key: str, value: object) -> None:
        self.attributes[key] = value

    def set_status(self, status: Any) -> None:
        self.status = status


class FakeTracer:
    def __init__(self) -> None:
        self.spans: list[FakeSpan] = []

    @contextmanager
    def start_as_current_span(self, name: str, context: Any, kind: Any) -> Iterator[FakeSpan]:
        del context
        span = FakeSpan(name, kind)
        self.spans.append(span)
        yield span


def call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


def test_middleware_makes_one_server_span_per_request() -> None:
    pytest.importorskip("opentelemetry.trace")
    from opentelemetry import trace

    tracer = FakeTracer()
    app = TracingMiddleware(hello, tracer)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    sent = call(app, "/predict", [(b"traceparent", parent.encode())])
    assert sent[0]["status"] == 200
    call(app, "/down", [])
    first, second = tracer.spans
    assert first.name == "GET /predict"
    assert first.kind == trace.SpanKind.SERVER
    assert first.attributes["http.response.status_code"] == 200
    assert first.status is None
    assert second.attributes["http.response.status_code"] == 503
    assert second.status.status_code == trace.StatusCode.ERROR
