"""The prediction path shared by all three dialects: bytes in, checked rows, bytes out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from ml_service.api.dialects import kserve_v1, open_inference, original
from ml_service.api.jsonbody import parse_json
from ml_service.api.responses import dumps
from ml_service.api.state import Loaded, ServiceState
from ml_service.model.schema import FloatArray

# Larger batches run in a thread so the event loop keeps serving other requests meanwhile.
THREAD_ROWS = 2000
# Up to this many rows, the log line carries inputs and outputs; above it, a digest.
LOG_ROWS = 10


@dataclass(frozen=True, slots=True)
class PredictRoute:
    """A matched prediction path: which dialect, and the route template for metrics."""

    dialect: str
    template: str


ORIGINAL = PredictRoute("original", "/predict")
KSERVE_V1 = PredictRoute("v1", "/v1/models/{name}:predict")
V2 = PredictRoute("v2", "/v2/models/{name}/infer")
V2_VERSIONED = PredictRoute("v2", "/v2/models/{name}/versions/{version}/infer")


async def predict(
    state: ServiceState, route: PredictRoute, body: bytes, details: bool
) -> tuple[bytes, dict[str, Any] | None]:
    """The JSON response body for one prediction request (raises `ServiceError` otherwise), and
    with `details` what the request's log line says about the prediction."""
    loaded = state.require()
    value = parse_json(body)
    schema = loaded.artifact.schema
    max_rows = state.settings.max_rows
    request_ref: str | None = None
    if route.dialect == "original":
        rows = original.parse(value, schema, max_rows)
    elif route.dialect == "v1":
        rows = kserve_v1.parse(value, schema, max_rows)
    else:
        rows, request_ref = open_inference.parse(value, schema, max_rows)
    if len(rows) >= THREAD_ROWS:
        predictions = await anyio.to_thread.run_sync(loaded.predictor.predict, rows)
    else:
        predictions = loaded.predictor.predict(rows)
    fields = observe(state, loaded, route, rows, predictions, details)
    response: dict[str, Any]
    if route.dialect == "original":
        response = original.render(predictions)
    elif route.dialect == "v1":
        response = kserve_v1.render(predictions)
    else:
        artifact = loaded.artifact
        response = open_inference.render(predictions, artifact.name, artifact.version, request_ref)
    return dumps(response), fields


def observe(
    state: ServiceState,
    loaded: Loaded,
    route: PredictRoute,
    rows: FloatArray,
    predictions: FloatArray,
    details: bool,
) -> dict[str, Any] | None:
    """Metrics and the input watch (training range, drift); with `details`, returns the
    prediction's log fields."""
    state.tally.prediction(route.dialect, predictions)
    if loaded.watch is not None:
        loaded.watch.observe(rows)
    if not details:
        return None
    artifact = loaded.artifact
    fields: dict[str, Any] = {
        "model": artifact.name,
        "model_version": artifact.version,
        "dialect": route.dialect,
        "rows": len(rows),
    }
    if len(rows) <= LOG_ROWS:
        fields["inputs"] = rows
        fields["outputs"] = predictions
    else:
        fields["inputs_sha256"] = hashlib.sha256(rows.tobytes()).hexdigest()
        fields["outputs_mean"] = float(predictions.mean())
    return fields
