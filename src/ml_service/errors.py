"""The one exception tree of ml-service.

Every error the service can answer with is a `ServiceError` subclass carrying its HTTP
status; `ml_service.http.responses.error_response` turns any of them into the JSON error body
(`{"error": ..., "details": [...]}`), and `ml_service.http.responses.service_error` turns any
other exception into one (a foreign HTTP error into its class here, anything unexpected into
`InternalError`). Nothing else in the code base chooses a status code.

    ServiceError
      Unauthorized (401)        missing or wrong API key / admin token
      Forbidden (403)           the endpoint is switched off (no admin token configured)
      NotFound (404)            unknown path, model or version
      MethodNotAllowed (405)    known path, other method
      RequestTimeout (408)      the body arrived too slowly
      Conflict (409)            a model version in the repository cannot be loaded
      PayloadTooLarge (413)     body or row count over the limit
      UnsupportedMediaType (415)
      MalformedJSON (400)       not JSON under the strict reading
      InvalidInput (422)        JSON that breaks the model's schema (every problem listed)
      InternalError (500)       a bug: logged with its traceback, answered without it
      NotReady (503)            nothing loaded yet, shutting down, or too busy
        ArtifactError           an artifact is missing, tampered with or incompatible
      TrainingError             `ml-service train` cannot go on (exit status 1)
        QualityGateFailed
      ServerFailed              `ml-service serve` stopped: a worker could not start (exit status 1)
      ClientError               `ml-service predict` got no usable answer
      WatchError                `ml-service watch` could not read a service's metrics
      TrackingError             MLflow tracking or its registry cannot be used
      CompareError              `ml-service compare` could not compare the models (exit status 1)
      BatchError                `ml-service score` cannot go on (exit status 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a request: where it is (path from the body's root) and what is wrong."""

    loc: Loc
    msg: str

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg}


class ServiceError(Exception):
    """Base of every error ml-service raises on purpose; `status` is its HTTP status."""

    status: int = 500

    def __init__(
        self,
        message: str,
        details: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        self.headers = dict(headers or {})


class Unauthorized(ServiceError):
    """A protected endpoint was called without the right credentials."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    """The endpoint exists but is switched off in this deployment."""

    status = 403


class NotFound(ServiceError):
    """Unknown path, model name or model version."""

    status = 404


class MethodNotAllowed(ServiceError):
    """The path exists but not for this method; the response carries `Allow`."""

    status = 405

    def __init__(self, allowed: Sequence[str]) -> None:
        allow = ", ".join(allowed)
        super().__init__(f"method not allowed here; use {allow}", headers={"Allow": allow})


class RequestTimeout(ServiceError):
    """The client sent its request too slowly."""

    status = 408


class Conflict(ServiceError):
    """The repository holds something that cannot be served as asked."""

    status = 409


class UnsupportedMediaType(ServiceError):
    """The body is not JSON (or uses the binary tensor extension)."""

    status = 415


class PayloadTooLarge(ServiceError):
    """The body exceeds the byte limit, or the request holds more rows than allowed."""

    status = 413


class MalformedJSON(ServiceError):
    """The body is not valid JSON under the service's strict reading."""

    status = 400


class InvalidInput(ServiceError):
    """Valid JSON that breaks the model's input schema; `details` lists every problem."""

    status = 422


class InternalError(ServiceError):
    """Something the code did not expect; the details stay in the log."""

    status = 500


class NotReady(ServiceError):
    """The model is not loaded yet, failed to load, or the server is shutting down."""

    status = 503


class ArtifactError(NotReady):
    """A model artifact is missing, tampered with, truncated or incompatible.

    The service never becomes ready with such an artifact, hence the 503.
    """


class TrainingError(ServiceError):
    """Training could not run: unreadable data, missing columns, bad settings."""


class QualityGateFailed(TrainingError):
    """The trained model is worse than the configured quality gate allows."""


class ServerFailed(ServiceError):
    """`ml-service serve` stopped on a fatal error: a worker could not start (the log says why)."""


class ClientError(ServiceError):
    """`ml-service predict` could not get predictions from a service."""


class WatchError(ServiceError):
    """`ml-service watch` could not read a service's metrics."""


class TrackingError(ServiceError):
    """MLflow tracking or its model registry cannot be used: not installed, unreachable, refused,
    or a registered version that is missing or fails verification."""


class CompareError(ServiceError):
    """`ml-service compare` could not compare the models (exit status 1)."""


class BatchError(ServiceError):
    """`ml-service score` could not score a file: unreadable input, missing columns, bad options."""
