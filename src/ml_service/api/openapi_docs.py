"""The prediction endpoints as the OpenAPI document shows them.

Requests to them are answered by `ml_service.api.asgi` before FastAPI routes anything; the
routes declared here hand the request to that same code, so the document and the behaviour
cannot drift apart. The body models exist for documentation: bodies are read by the strict
reader and the dialect parsers, which check more than these types can express.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.types import Receive, Scope, Send

from ml_service.api.predict import KSERVE_V1, ORIGINAL, V2, V2_VERSIONED, PredictRoute

Handler = Callable[[Scope, Receive, Send, PredictRoute], Awaitable[None]]
SAMPLE: dict[str, Any] = {
    "CHAS": {"0": 0},
    "RM": {"0": 6.575},
    "TAX": {"0": 296.0},
    "PTRATIO": {"0": 15.3},
    "B": {"0": 396.9},
    "LSTAT": {"0": 4.98},
}


class OriginalRequest(RootModel[dict[str, dict[str, float] | list[float]]]):
    """Each feature maps to `{row_key: value}` (pandas "columns" orient) or to a list."""

    model_config = ConfigDict(json_schema_extra={"examples": [dict(SAMPLE)]})


class OriginalResponse(BaseModel):
    prediction: list[float] = Field(description="One prediction per row, in the request's order.")


class V1Request(BaseModel):
    instances: list[dict[str, float] | list[float]] = Field(
        description="Rows as objects of feature values, or as value lists in schema order. "
        "`inputs` is accepted as a synonym."
    )


class V1Response(BaseModel):
    predictions: list[float]


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str = Field(description="FP16, FP32, FP64, INT8-INT64 or UINT8-UINT64")
    data: list[Any] = Field(description="Flat (row-major) or nested values")
    parameters: dict[str, Any] | None = None


class V2Output(BaseModel):
    name: str = Field(description="Only `predict` exists")
    parameters: dict[str, Any] | None = None


class V2Request(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor]
    outputs: list[V2Output] | None = None


class V2Response(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence a person can act on")
    details: list[ErrorDetail] | None = None


ERRORS = {
    "400": "Body is not valid JSON",
    "404": "Unknown model or version",
    "413": "Body or row count over the limit",
    "415": "Not JSON",
    "422": "Valid JSON that breaks the input schema; every problem is listed",
    "503": "Model not loaded, or shutting down",
}
ENDPOINTS: list[tuple[PredictRoute, str, str, type[BaseModel], type[BaseModel]]] = [
    (ORIGINAL, "original", "Predict (original dialect)", OriginalRequest, OriginalResponse),
    (KSERVE_V1, "kserve-v1", "Predict (KServe V1)", V1Request, V1Response),
    (V2, "v2", "Infer (Open Inference Protocol)", V2Request, V2Response),
    (V2_VERSIONED, "v2", "Infer, one version (Open Inference Protocol)", V2Request, V2Response),
]


class _Delegate(Response):
    """A response that hands the raw request to the fast path's handler."""

    def __init__(self, handler: Handler, route: PredictRoute, request: Request) -> None:
        super().__init__()
        self._handler, self._route, self._request = handler, route, request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send, self._route)


def declare_predict_routes(app: FastAPI, handler: Handler) -> None:
    """Add the prediction routes (delegating to `handler`) and their documented bodies."""
    for route, tag, summary, _, _ in ENDPOINTS:

        async def endpoint(request: Request, route: PredictRoute = route) -> Response:
            return _Delegate(handler, route, request)

        app.add_api_route(
            route.template,
            endpoint,
            methods=["POST"],
            tags=[tag],
            summary=summary,
            include_in_schema=True,
            response_class=Response,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {"application/json": {"schema": ref(model)}}

    error_content = content(ErrorBody)
    for route, _, _, request_model, response_model in ENDPOINTS:
        operation = spec["paths"][route.template]["post"]
        operation["requestBody"] = {"required": True, "content": content(request_model)}
        operation["responses"] = {
            "200": {"description": "Predictions", "content": content(response_model)},
            **{
                code: {"description": text, "content": error_content}
                for code, text in ERRORS.items()
            },
        }
    return spec
