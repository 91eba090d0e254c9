"""JSON responses, and the one place where an error becomes a status and a body."""

from __future__ import annotations

from typing import Any

import orjson

from ml_service.errors import ServiceError

JSON_TYPE = b"application/json"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    """Serialise a response body; numpy arrays are written directly, without `tolist`."""
    return orjson.dumps(value, option=_OPTIONS)


def error_body(exc: ServiceError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message}
    if exc.details:
        body["details"] = [problem.as_dict() for problem in exc.details]
    return body


def error_response(exc: ServiceError) -> tuple[int, dict[str, str], bytes]:
    """(status, extra headers, JSON body) for any service error."""
    return exc.status, exc.headers, dumps(error_body(exc))
