"""JSON responses, and the one place where an exception becomes a status and a body."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import Send

from ml_service.errors import InternalError, MethodNotAllowed, NotFound, ServiceError

JSON_TYPE = b"application/json"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
log = logging.getLogger("ml_service.http")


def dumps(value: Any) -> bytes:
    """Serialise a response body; numpy arrays are written directly, without `tolist`."""
    return orjson.dumps(value, option=_OPTIONS)


def service_error(exc: BaseException, path: str = "") -> ServiceError:
    """Any exception as the service error it stands for.

    Foreign HTTP errors (Starlette's routing and static files raise them) become their class in
    the tree; anything else is a bug, logged here with its traceback and answered as a 500
    that says nothing of the code.
    """
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, HTTPException):
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "GET")
            return MethodNotAllowed(sorted(allow.split(", ")))
        if exc.status_code == 404:
            return NotFound(f"no such path: {path}")
        error = ServiceError(str(exc.detail), headers=dict(exc.headers or {}))
        error.status = exc.status_code
        return error
    log.error(
        "unexpected error answering %s: %r", path, exc, exc_info=exc, extra={"event": "error"}
    )
    return InternalError("internal error; the server logged the details")


def error_body(exc: ServiceError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message}
    if exc.details:
        body["details"] = [problem.as_dict() for problem in exc.details]
    return body


def error_response(exc: ServiceError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, JSON body) for any service error."""
    headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in exc.headers.items()]
    return exc.status, headers, dumps(error_body(exc))


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One complete JSON response."""
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


async def send_error(send: Send, exc: ServiceError) -> None:
    status, headers, body = error_response(exc)
    await send_json(send, status, body, headers)
