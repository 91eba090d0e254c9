"""`ml-service predict`: send rows to a running service and check what comes back.

It is the smoke test every pipeline runs against a deployed URL, so it is strict: any answer
other than one prediction per row sent (a finite number, or a label with probabilities that
sum to 1) is a failure with a clear message. It speaks each dialect through the same codecs the
server uses (`ml_service.http.codecs`): where to send, how to write rows, how to read answers.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ml_service import __version__
from ml_service.errors import ClientError
from ml_service.http.codecs import BY_DIALECT, CODECS, Codec
from ml_service.http.codecs.base import Answer
from ml_service.model.schema import MISSING_TOKENS

RETRY_STATUSES = frozenset({502, 503, 504})
KEY_ENV = "ML_SERVICE_API_KEY"
_MISSING = frozenset(MISSING_TOKENS)


@dataclass(frozen=True)
class Request:
    """A request body in one dialect, and how many rows it holds."""

    codec: Codec
    body: Any
    rows: int

    @property
    def dialect(self) -> str:
        return self.codec.dialect


def read_request(path: Path) -> Request:
    """A request from a JSON file (any dialect) or a CSV file (header = features)."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                records = list(csv.DictReader(handle))
            if not records:
                raise ClientError(f"{path}: no rows")
            columns = {name: [_cell(r[name]) for r in records] for name in records[0]}
            codec = BY_DIALECT["original"]
            return Request(codec, codec.write(columns), len(records))
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ClientError(f"{path}: not valid JSON: {exc}") from exc
    return classify(body, str(path))


def _cell(text: str | None) -> Any:
    """A CSV cell as JSON sends it: a number when it reads as one, null when missing, else text."""
    if text is None or text.strip() in _MISSING:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def classify(body: Any, source: str) -> Request:
    """Which dialect a body is written in (the most specific codec that claims it)."""
    if not isinstance(body, dict) or not body:
        raise ClientError(f"{source}: expected a JSON object")
    for codec in reversed(CODECS):
        if codec.claims(body):
            return Request(codec, body, codec.rows(body))
    raise ClientError(f"{source}: not a request in any dialect")


def convert(request: Request, dialect: str) -> Request:
    """The same rows in another dialect (needs feature names, so not from value lists)."""
    columns = request.codec.columns(request.body)
    codec = BY_DIALECT[dialect]
    return Request(codec, codec.write(columns), request.rows)


def api_key(file: Path | None = None) -> str | None:
    """The API key to send: from `file` (its first line), else `ML_SERVICE_API_KEY`."""
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise ClientError(f"{file}: cannot read: {exc.strerror or exc}") from exc
        if not lines:
            raise ClientError(f"{file}: holds no key")
        return lines[0]
    return os.environ.get(KEY_ENV) or None


def predict(
    url: str,
    request: Request,
    model: str = "housing",
    retries: int = 5,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    key: str | None = None,
) -> Answer:
    """The answer to `request`, retrying connection failures and 502/503/504 with backoff."""
    endpoint = url.rstrip("/") + request.codec.path(model)
    headers = {"user-agent": f"ml-service/{__version__}"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    delay = 0.5
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(delay)
            delay = min(delay * 2, 10.0)
        try:
            response = httpx.post(endpoint, json=request.body, timeout=timeout, headers=headers)
        except httpx.TransportError as exc:
            last = f"cannot reach {endpoint}: {exc.__class__.__name__}: {exc}"
            continue
        if response.status_code in RETRY_STATUSES:
            last = f"{endpoint} answered {response.status_code}: {_error_text(response)}"
            continue
        if response.status_code != 200:
            raise ClientError(
                f"{endpoint} answered {response.status_code}: {_error_text(response)}"
            )
        return _answer(endpoint, response, request)
    raise ClientError(f"gave up after {retries + 1} attempts; last: {last}")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "(empty body)"
    if isinstance(body, dict) and "error" in body:
        details = body.get("details") or []
        listed = "; ".join(
            f"{'/'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
            for d in details[:10]
            if isinstance(d, dict)
        )
        return f"{body['error']}" + (f" [{listed}]" if listed else "")
    return json.dumps(body)[:200]


def _answer(endpoint: str, response: httpx.Response, request: Request) -> Answer:
    try:
        body = response.json()
    except ValueError:
        raise ClientError(f"{endpoint} answered 200 but not with JSON") from None
    try:
        answer = request.codec.read(body)
    except ClientError as exc:
        raise ClientError(f"{endpoint} answered 200 without predictions ({exc.message})") from None
    values = answer.predictions
    if len(values) != request.rows:
        raise ClientError(
            f"{endpoint} answered 200 with {len(values)} predictions for {request.rows} rows: "
            f"{json.dumps(body)[:200]}"
        )
    if answer.probabilities is None:
        if not all(_finite(v) for v in values):
            raise ClientError(f"{endpoint} answered non-numeric predictions: {values[:5]}")
        return Answer([float(v) for v in values])
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise ClientError(f"{endpoint} answered labels that are not text or whole numbers")
    probabilities = answer.probabilities
    if len(probabilities) != len(values) or not all(
        isinstance(row, dict)
        and all(_finite(p) and 0 <= p <= 1 for p in row.values())
        and abs(sum(row.values()) - 1) < 1e-6
        for row in probabilities
    ):
        raise ClientError(f"{endpoint} answered probabilities that do not sum to 1 per row")
    return answer


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
