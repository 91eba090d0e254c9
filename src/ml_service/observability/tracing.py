"""Optional OpenTelemetry tracing: one server span per request, exported over OTLP/HTTP.

Off unless `ML_SERVICE_OTLP_ENDPOINT` is set. The SDK and exporter come with the optional
`tracing` extra (`pip install 'ml-service[tracing]'`) and are imported only when the endpoint is
set, so a default install neither needs nor loads them. Incoming `traceparent` headers are
honoured, so the service's spans join the caller's trace.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_service import __version__
from ml_service.config import Settings
from ml_service.errors import ServiceError

EXTRA = "ml-service[tracing]"


class TracingUnavailable(ServiceError):
    """An OTLP endpoint is configured but the OpenTelemetry SDK is not installed."""


def instrument(app: ASGIApp, settings: Settings) -> ASGIApp:
    """`app` wrapped in a tracing middleware when an OTLP endpoint is set, else `app` itself."""
    if not settings.otlp_endpoint:
        return app
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource  # type: ignore[import-not-found, unused-ignore]
        from opentelemetry.sdk.trace import TracerProvider  # type: ignore[import-not-found, unused-ignore]
        from opentelemetry.sdk.trace.export import (  # type: ignore[import-not-found, unused-ignore]
            BatchSpanProcessor,
        )
    except ImportError as exc:
        raise TracingUnavailable(
            f"ML_SERVICE_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc.name}); "
            f"install '{EXTRA}' or unset the variable"
        ) from exc
    resource = Resource.create({"service.name": "ml-service", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return TracingMiddleware(app, trace.get_tracer("ml_service", __version__))


class _HeaderGetter:
    """Reads W3C trace context from ASGI headers."""

    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


class TracingMiddleware:
    """One SERVER span per HTTP request, named after the method and path."""

    def __init__(self, app: ASGIApp, tracer: Any) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate, trace

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        context = propagate.extract(headers, getter=_HeaderGetter())  # type: ignore[arg-type]
        name = f"{scope['method']} {scope['path']}"
        with self.tracer.start_as_current_span(
            name, context=context, kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(trace.Status(trace.StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)
