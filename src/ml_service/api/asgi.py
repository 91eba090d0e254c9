"""The ASGI application: a thin front that answers predictions itself and hands the rest on.

Every request passes through `Front`: it assigns the request id, counts, times and logs the
request, and maps any error to the JSON error body. Prediction requests (the hot path) are
answered right here, without framework routing or per-request objects; everything else goes
to the FastAPI app from `ml_service.api.routes`.

`app` is the module-level application servers import (`ml_service.api.asgi:app`).
"""

from __future__ import annotations

import logging
import re
import time
from random import getrandbits
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_service.api.predict import KSERVE_V1, ORIGINAL, V2, V2_VERSIONED, PredictRoute, predict
from ml_service.api.responses import JSON_TYPE, error_response
from ml_service.api.routes import build_app
from ml_service.api.state import ServiceState, check_model
from ml_service.config import Settings, get_settings
from ml_service.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
)
from ml_service.observability import tracing
from ml_service.observability.logging import log_event

log = logging.getLogger("ml_service.http")

# The version (4) and variant (RFC 4122) bits of a UUID4, as `uuid.UUID(version=4)` sets them.
_UUID4_CLEAR = ~((0xF << 76) | (0xC << 60)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x8 << 60)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BINARY_HEADER = b"inference-header-content-length"
# Where a prediction's log details wait in the request scope's state on the framework path.
_DETAILS = "ml_service.prediction"
_NO_DETAILS: dict[str, Any] = {}


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


class Front:
    """ASGI front: request ids, logs, metrics, errors; predictions answered directly."""

    def __init__(self, settings: Settings) -> None:
        self.state = ServiceState(settings)
        self.app: ASGIApp = build_app(self.state, self.handle_predict)
        self.max_body = settings.max_body_bytes
        # Every request, the fast path included, passes the tracing middleware when it is on.
        self._entry: ASGIApp = tracing.instrument(self._dispatch, settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        route, error = self.match(scope)
        if route is not None:
            await self._predict_request(scope, receive, send, route, request_id, start)
            return
        request_state = scope.setdefault("state", {})
        request_state["request_id"] = request_id
        status = 500
        template = ""
        self.state.tally.in_flight += 1

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            if error is not None:
                await _send_error(send_with_id, error)
            else:
                await self.app(scope, receive, send_with_id)
                found = scope.get("route")
                template = getattr(found, "path", "") or "unmatched"
        except ClientGone:
            status = 499
        finally:
            self.state.tally.in_flight -= 1
            self._record(
                scope, template, "", status, start, request_id, request_state.get(_DETAILS)
            )

    async def _predict_request(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: PredictRoute,
        request_id: str,
        start: float,
    ) -> None:
        """The hot path: one prediction request, its response carrying the request id."""
        status = 500
        details: dict[str, Any] | None = None
        tally = self.state.tally
        tally.in_flight += 1
        try:
            status, details = await self._answer(
                scope, receive, send, route, (b"x-request-id", request_id.encode())
            )
        except ClientGone:
            status = 499
        finally:
            tally.in_flight -= 1
            self._record(scope, route.template, route.dialect, status, start, request_id, details)

    def _record(
        self,
        scope: Scope,
        template: str,
        dialect: str,
        status: int,
        start: float,
        request_id: str,
        details: dict[str, Any] | None,
    ) -> None:
        """Count, time and log one finished request (with its prediction's `details`)."""
        elapsed = time.perf_counter() - start
        method: str = scope["method"]
        self.state.tally.request(template, dialect, method, status, elapsed)
        path: str = scope["path"]
        log_event(
            log,
            "request",
            f"{method} {path} {status}",
            method=method,
            path=path,
            status=status,
            latency_ms=round(elapsed * 1000, 3),
            request_id=request_id,
            **(details or _NO_DETAILS),
        )

    def match(self, scope: Scope) -> tuple[PredictRoute | None, ServiceError | None]:
        """The prediction route a path names, or the 404/405 it deserves, or neither."""
        path: str = scope["path"]
        route: PredictRoute | None = None
        model: str | None = None
        version: str | None = None
        if path == "/predict":
            route = ORIGINAL
        elif path.startswith("/v1/models/") and path.endswith(":predict"):
            route, model = KSERVE_V1, path[len("/v1/models/") : -len(":predict")]
        elif path.startswith("/v2/models/") and path.endswith("/infer"):
            parts = path[len("/v2/models/") : -len("/infer")].split("/")
            if len(parts) == 1:
                route, model = V2, parts[0]
            elif len(parts) == 3 and parts[1] == "versions":
                route, model, version = V2_VERSIONED, parts[0], parts[2]
        if route is None:
            return None, None
        loaded = self.state.loaded
        if model is not None and loaded is not None:
            try:
                check_model(loaded.artifact, model, version)
            except NotFound as exc:
                return None, exc
        if scope["method"] != "POST":
            return None, MethodNotAllowed(["POST"])
        return route, None

    async def handle_predict(
        self, scope: Scope, receive: Receive, send: Send, route: PredictRoute
    ) -> None:
        """Content type, size, then the shared prediction path; errors become JSON bodies."""
        _, details = await self._answer(scope, receive, send, route, None)
        scope["state"][_DETAILS] = details

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: PredictRoute,
        id_header: tuple[bytes, bytes] | None,
    ) -> tuple[int, dict[str, Any] | None]:
        """Answer one prediction request; `id_header` is appended to the response's headers.
        Returns the status sent and the prediction's details for the log line."""
        try:
            headers = _headers(scope)
            _check_content_type(headers)
            body = await _read_body(receive, headers, self.max_body)
            payload, details = await predict(
                self.state, route, body, log.isEnabledFor(logging.INFO)
            )
        except ServiceError as exc:
            return await _send_error(send, exc, id_header), None
        await _send_json(send, 200, payload, [id_header] if id_header is not None else None)
        return 200, details


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return _new_request_id()


def _new_request_id() -> str:
    """A random UUID4 as 32 hex digits, like `uuid.uuid4().hex` at a fraction of its cost.

    Request ids must be unique, not secret: the `random` module's generator (reseeded in every
    forked worker) gives the bits without a system call per request.
    """
    return f"{getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def _check_content_type(headers: dict[bytes, bytes]) -> None:
    if _BINARY_HEADER in headers:
        raise UnsupportedMediaType(
            "the binary tensor extension is not supported; send the tensors as JSON"
        )
    raw = headers.get(b"content-type")
    if raw is None or raw == JSON_TYPE:
        return
    media = raw.split(b";", 1)[0].strip().lower()
    if media == JSON_TYPE or (media.startswith(b"application/") and media.endswith(b"+json")):
        return
    raise UnsupportedMediaType(
        f"content type {media.decode('latin-1')!r} is not supported; send application/json"
    )


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The whole body, refusing (without reading on) as soon as it is over `limit` bytes."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body is larger than the limit of {limit} bytes")


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON_TYPE),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send, exc: ServiceError, id_header: tuple[bytes, bytes] | None = None
) -> int:
    """Send the error's JSON body with its headers (and `id_header`); return its status."""
    status, extra, body = error_response(exc)
    headers = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    if id_header is not None:
        headers.append(id_header)
    await _send_json(send, status, body, headers)
    return status


def create_app(settings: Settings | None = None) -> Front:
    """A new application for `settings` (default: from the environment)."""
    return Front(settings or get_settings())


def __getattr__(name: str) -> Any:
    # `app` is built on first access, so importing this module has no side effects.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
