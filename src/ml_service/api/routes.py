"""Everything but the prediction hot path, as a FastAPI app: probes, metadata, page, docs.

The prediction endpoints are declared here too, so that `/openapi.json` and `/docs` describe
them; `ml_service.api.asgi` answers them before FastAPI's routing, through the same code.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml_service import __version__
from ml_service.api import openapi_docs, page
from ml_service.api.responses import error_response
from ml_service.api.state import ServiceState, check_model
from ml_service.errors import (
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    NotReady,
    Problem,
    ServiceError,
)
from ml_service.observability import inputs, metrics

PLATFORM = "onnxruntime_onnx"


def build_app(state: ServiceState, predict_handler: openapi_docs.Handler) -> FastAPI:
    """The FastAPI application for one worker."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.load()
        # Everything loaded so far lives as long as the worker: keep it out of the garbage
        # collector's full passes, which otherwise stall requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        if state.loaded is not None:
            artifact = state.loaded.artifact
            metrics.MODEL_INFO.labels(artifact.name, artifact.version).set(1)
        async with state.tally.flushing(), inputs.publishing(_watch(state)):
            yield
            state.draining = True

    docs = state.settings.docs
    app = FastAPI(
        title="ml-service",
        version=__version__,
        summary="Tabular regression model served in three dialects: the original /predict, "
        "KServe V1 and the Open Inference Protocol (V2).",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        redoc_url=None,
    )
    install_error_handlers(app)

    def model(name: str, version: str | None = None) -> Any:
        artifact = state.require().artifact
        check_model(artifact, name, version)
        return artifact

    @app.get("/", response_class=HTMLResponse, tags=["page"], summary="Prediction web page")
    async def home() -> HTMLResponse:
        return page.render(state)

    @app.get("/model/report", response_class=HTMLResponse, tags=["page"], summary="Model report")
    async def model_report() -> Response:
        return page.report_file(state, page.REPORT_FILE)

    @app.get("/model/report/{file}", tags=["page"], summary="Model report plots and style")
    async def model_report_file(file: str) -> Response:
        return page.report_file(state, f"{page.REPORT_DIR}/{file}")

    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return page.favicon()

    @app.get("/health/live", tags=["probes"], summary="Liveness: the process answers")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/health/ready", tags=["probes"], summary="Readiness: model loaded and warmed")
    async def ready() -> dict[str, bool]:
        return _readiness(state)

    @app.get("/metrics", tags=["probes"], summary="Prometheus metrics (text format)")
    async def metrics_endpoint() -> Response:
        watch = _watch(state)
        state.tally.flush()
        if watch is not None:
            watch.settle()
        body, content_type = metrics.render(watch.drift if watch else None)
        return Response(body, media_type=content_type)

    @app.get("/v1/models/{name}", tags=["kserve-v1"], summary="Model status and card")
    async def v1_model(name: str) -> dict[str, Any]:
        artifact = model(name)
        card = artifact.card
        return {
            "name": artifact.name,
            "ready": state.ready,
            "version": artifact.version,
            "features": [
                {
                    "name": f.name,
                    "description": f.description,
                    "unit": f.unit,
                    "min": min(f.allowed) if f.allowed else f.min,
                    "max": max(f.allowed) if f.allowed else f.max,
                }
                for f in artifact.schema.features
            ],
            "target": card.get("target"),
            "metrics": card.get("metrics"),
            "training_data_sha256": card.get("training_data", {}).get("sha256"),
            "trained_at": card.get("trained_at"),
            "drift": watch.status().as_dict() if (watch := _watch(state)) else None,
        }

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def v2_server() -> dict[str, Any]:
        return {"name": "ml-service", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", tags=["v2"], summary="Server liveness")
    async def v2_live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"], summary="Server readiness")
    async def v2_ready() -> dict[str, bool]:
        return _readiness(state)

    def metadata(artifact: Any) -> dict[str, Any]:
        return {
            "name": artifact.name,
            "versions": [artifact.version],
            "platform": PLATFORM,
            "inputs": [
                {"name": f, "datatype": "FP64", "shape": [-1]} for f in artifact.schema.names
            ],
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
        }

    def model_ready(artifact: Any) -> dict[str, Any]:
        if not state.ready:
            raise NotReady(f"model {artifact.name!r} is not ready")
        return {"name": artifact.name, "ready": True}

    @app.get("/v2/models/{name}", tags=["v2"], summary="Model metadata")
    async def v2_metadata(name: str) -> dict[str, Any]:
        return metadata(model(name))

    @app.get(
        "/v2/models/{name}/versions/{version}", tags=["v2"], summary="Model metadata (one version)"
    )
    async def v2_metadata_version(name: str, version: str) -> dict[str, Any]:
        return metadata(model(name, version))

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="Model readiness")
    async def v2_ready_model(name: str) -> dict[str, Any]:
        return model_ready(model(name))

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        tags=["v2"],
        summary="Model readiness (one version)",
    )
    async def v2_ready_version(name: str, version: str) -> dict[str, Any]:
        return model_ready(model(name, version))

    openapi_docs.declare_predict_routes(app, predict_handler)
    return app


def _watch(state: ServiceState) -> inputs.InputWatch | None:
    return state.loaded.watch if state.loaded is not None else None


def _readiness(state: ServiceState) -> dict[str, bool]:
    if state.draining:
        raise NotReady("the server is shutting down")
    state.require()
    if not state.ready:
        raise NotReady("the model is still warming up")
    return {"ready": True}


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through `error_response`, including FastAPI's and Starlette's own."""

    async def service_error(_: Request, exc: Exception) -> Response:
        if not isinstance(exc, ServiceError):  # pragma: no cover - registered for ServiceError
            raise exc
        status, headers, body = error_response(exc)
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "GET")
            return await service_error(request, MethodNotAllowed(allow.split(", ")))
        if exc.status_code == 404:
            return await service_error(request, NotFound(f"no such path: {request.url.path}"))
        error = ServiceError(str(exc.detail))
        error.status = exc.status_code
        return await service_error(request, error)

    async def validation_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):  # pragma: no cover
            raise exc
        problems = [Problem(tuple(e["loc"]), str(e["msg"])) for e in exc.errors()]
        return await service_error(request, InvalidInput("invalid request", problems))

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
