"""The request pipeline: what happens once for every HTTP request, whatever it asks for.

`Pipeline` wraps the route table. For each request it assigns the request id (echoed as
`X-Request-ID`), checks the API key (401 before anything else), sheds load past the worker's
cap on requests in progress (503 with `Retry-After`), hands the request to its route, turns any
exception into the JSON error body (`ml_service.http.responses.service_error`: the one mapping,
with a logged 500 for anything unexpected), and at the end counts, times and logs it in one
JSON line. A prediction route leaves what it predicted in the request's scope (`ANSWERED`), so
the same line names the model, version, dialect and rows.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from random import getrandbits
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ml_service.errors import NotReady, Unauthorized
from ml_service.http.body import RETRY_AFTER, ClientGone
from ml_service.http.responses import send_error, service_error
from ml_service.model.schema import FloatArray
from ml_service.observability.logging import log_event
from ml_service.predictor import Prediction

if TYPE_CHECKING:
    from ml_service.repository.registry import LoadedModel

log = logging.getLogger("ml_service.http")

# The version (4) and variant (RFC 4122) bits of a UUID4, as `uuid.UUID(version=4)` sets them.
_UUID4_CLEAR = ~((0xF << 76) | (0xC << 60)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x8 << 60)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BEARER = b"bearer "
# Up to this many rows, the log line carries inputs and outputs (when inputs are logged).
LOG_ROWS = 10


# A prediction route leaves (dialect, model, rows, prediction) here for the log line and
# the metrics; other routes leave nothing.
ANSWERED = "ml_service.answered"
Answered = tuple[str, "LoadedModel", FloatArray, Prediction]


class Pipeline:
    """Ids, keys, load shedding, errors, metrics and logs for every request to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        service: Any,
        public: frozenset[str] = frozenset(),
        public_prefixes: tuple[str, ...] = (),
        unlimited: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.service = service
        self.tally = service.tally
        self.keys: tuple[bytes, ...] = service.api_keys
        self.public = public
        self.public_prefixes = public_prefixes
        self.unlimited = unlimited
        self.max_in_progress: int = service.settings.max_in_progress
        self.log_inputs: bool = service.settings.log_inputs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        id_header = (b"x-request-id", request_id.encode())
        scope["app"] = self
        status = 0

        async def respond(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers")
                if type(headers) is list:
                    headers.append(id_header)
                else:
                    message["headers"] = [*(headers or ()), id_header]
            await send(message)

        tally = self.tally
        tally.in_flight += 1
        path: str = scope["path"]
        try:
            if self.keys and not self._public(path):
                self._authenticate(scope)
            if tally.in_flight > self.max_in_progress and path not in self.unlimited:
                raise NotReady(
                    f"the server is busy ({self.max_in_progress} requests in progress); "
                    "retry shortly",
                    headers={"Retry-After": RETRY_AFTER},
                )
            await self.app(scope, receive, respond)
        except ClientGone:
            status = 499
        except Exception as exc:
            error = service_error(exc, path)
            if status == 0:
                await send_error(respond, error)
        finally:
            tally.in_flight -= 1
            self._record(scope, status, start, request_id)

    def _public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefixes)

    def _authenticate(self, scope: Scope) -> None:
        """401 unless the request carries a configured API key (compared in constant time)."""
        given: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == _BEARER:
                given = value[7:].strip()
            elif name == b"x-api-key":
                given = value.strip()
        if given is None:
            raise Unauthorized("this endpoint needs an API key: send Authorization: Bearer <key>")
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise Unauthorized("the API key is not valid")

    def _record(self, scope: Scope, status: int, start: float, request_id: str) -> None:
        """Count, time and log one finished request."""
        elapsed = time.perf_counter() - start
        method: str = scope["method"]
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        answered: Answered | None = scope.get(ANSWERED)
        if answered is None:
            self.tally.request(template, "", method, status, elapsed)
        else:
            model = answered[1]
            self.tally.request(
                template, answered[0], method, status, elapsed, model.name, model.version
            )
        if not log.isEnabledFor(logging.INFO):
            return
        path: str = scope["path"]
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round(elapsed * 1000, 3),
            "request_id": request_id,
        }
        if answered is not None:
            fields.update(prediction_fields(answered, self.log_inputs))
        log_event(log, "request", f"{method} {path} {status}", fields)


def prediction_fields(answered: Answered, inputs: bool) -> dict[str, Any]:
    """What a request's log line says about its prediction: the model version, and the inputs
    and outputs themselves (small requests, with `inputs`) or the inputs' digest."""
    dialect, model, rows, prediction = answered
    fields: dict[str, Any] = {
        "model": model.name,
        "model_version": model.version,
        "dialect": dialect,
        "rows": len(rows),
    }
    if inputs and len(rows) <= LOG_ROWS:
        fields["inputs"] = rows
        fields["outputs"] = (
            prediction.values if prediction.values is not None else prediction.classes
        )
    else:
        fields["inputs_sha256"] = hashlib.sha256(rows.tobytes()).hexdigest()
    return fields


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
