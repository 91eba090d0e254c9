"""`ml-service predict`: send rows to a running service and check what comes back.

It is the smoke test every pipeline runs against a deployed URL, so it is strict: any answer
other than one finite prediction per row sent is a failure with a clear message.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ml_service import __version__
from ml_service.errors import ClientError

RETRY_STATUSES = frozenset({502, 503, 504})
PATHS = {
    "original": "/predict",
    "v1": "/v1/models/{model}:predict",
    "v2": "/v2/models/{model}/infer",
}


@dataclass(frozen=True)
class Request:
    """A request body in one dialect, and how many rows it holds."""

    dialect: str
    body: dict[str, Any]
    rows: int


def read_request(path: Path) -> Request:
    """A request from a JSON file (any of the three forms) or a CSV file (header = features)."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                records = list(csv.DictReader(handle))
            if not records:
                raise ClientError(f"{path}: no rows")
            columns = {name: [_number(path, r[name], name) for r in records] for name in records[0]}
            return Request("original", columns, len(records))
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ClientError(f"{path}: not valid JSON: {exc}") from exc
    return classify(body, str(path))


def classify(body: Any, source: str) -> Request:
    """Which dialect a body is written in, and its row count."""
    if not isinstance(body, dict) or not body:
        raise ClientError(f"{source}: expected a JSON object")
    inputs = body.get("inputs")
    if (
        isinstance(inputs, list)
        and inputs
        and all(isinstance(t, dict) and "datatype" in t for t in inputs)
    ):
        shape = inputs[0].get("shape") or [0]
        return Request("v2", body, int(shape[0]))
    for key in ("instances", "inputs"):
        if isinstance(body.get(key), list):
            return Request("v1", body, len(body[key]))
    first = next(iter(body.values()))
    return Request("original", body, len(first) if isinstance(first, dict | list) else 1)


def _number(path: Path, text: str | None, column: str) -> float:
    try:
        return float(text or "")
    except ValueError:
        raise ClientError(f"{path}: column {column} holds {text!r}, not a number") from None


def predict(
    url: str,
    request: Request,
    model: str = "housing",
    retries: int = 5,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[float]:
    """Predictions for `request`, retrying connection failures and 502/503/504 with backoff."""
    endpoint = url.rstrip("/") + PATHS[request.dialect].format(model=model)
    headers = {"user-agent": f"ml-service/{__version__}"}
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
        return _predictions(endpoint, response, request)
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


def _predictions(endpoint: str, response: httpx.Response, request: Request) -> list[float]:
    try:
        body = response.json()
    except ValueError:
        raise ClientError(f"{endpoint} answered 200 but not with JSON") from None
    if request.dialect == "original":
        values = body.get("prediction") if isinstance(body, dict) else None
    elif request.dialect == "v1":
        values = body.get("predictions") if isinstance(body, dict) else None
    else:
        outputs = body.get("outputs") if isinstance(body, dict) else None
        values = outputs[0].get("data") if isinstance(outputs, list) and outputs else None
    if not isinstance(values, list) or len(values) != request.rows:
        raise ClientError(
            f"{endpoint} answered 200 without {request.rows} predictions: {json.dumps(body)[:200]}"
        )
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ClientError(f"{endpoint} answered non-numeric predictions: {values[:5]}")
    return [float(v) for v in values]


def convert(request: Request, dialect: str) -> Request:
    """The same rows in another dialect (needs feature names, so not from value lists)."""
    columns = _columns(request)
    names = list(columns)
    rows = len(next(iter(columns.values()))) if columns else 0
    if dialect == "original":
        body: dict[str, Any] = {n: {str(i): v for i, v in enumerate(columns[n])} for n in names}
    elif dialect == "v1":
        body = {"instances": [{n: columns[n][i] for n in names} for i in range(rows)]}
    else:
        body = {
            "inputs": [
                {"name": n, "shape": [rows], "datatype": "FP64", "data": columns[n]} for n in names
            ]
        }
    return Request(dialect, body, rows)


def _columns(request: Request) -> dict[str, list[Any]]:
    body = request.body
    if request.dialect == "original":
        return {
            name: list(v.values()) if isinstance(v, dict) else list(v) for name, v in body.items()
        }
    if request.dialect == "v1":
        instances = body.get("instances", body.get("inputs")) or []
        if not instances or not all(isinstance(i, dict) for i in instances):
            raise ClientError("instances given as value lists cannot be converted: no names")
        return {name: [i.get(name) for i in instances] for name in instances[0]}
    tensors = body["inputs"]
    if len(tensors) == 1 and len(tensors[0].get("shape", [])) == 2:
        raise ClientError("a single [N, F] tensor cannot be converted: no feature names")
    return {t["name"]: list(t["data"]) for t in tensors}
