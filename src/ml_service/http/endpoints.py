"""Every endpoint but predictions, the page and the docs: probes, model metadata, metrics and
the model repository extension."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ml_service import __version__
from ml_service.errors import Forbidden, MalformedJSON, NotReady, Unauthorized
from ml_service.http.codecs.open_inference import model_metadata
from ml_service.http.openapi import Doc
from ml_service.http.page import report_links
from ml_service.http.responses import JSON_TYPE, dumps
from ml_service.http.service import Service
from ml_service.model.schema import Feature
from ml_service.observability import metrics
from ml_service.repository.registry import LoadedModel

EXTENSIONS = ["model_repository"]


def json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type=JSON_TYPE.decode())


ADMIN_ERRORS = ("401", "403", "404", "409")
MODEL_LIST = {
    "type": "object",
    "properties": {"models": {"type": "array", "items": {"type": "string"}}},
    "required": ["models"],
}


def _feature(f: Feature) -> dict[str, Any]:
    """One feature as the V1 card lists it: enough to draw its input and say what it accepts
    (infinite bounds are written as null)."""
    numeric = not f.categorical
    return {
        "name": f.name,
        "kind": f.kind,
        "description": f.description,
        "unit": f.unit,
        "min": (min(f.allowed) if f.allowed else f.min) if numeric else None,
        "max": (max(f.allowed) if f.allowed else f.max) if numeric else None,
        "allowed": list(f.allowed) if f.allowed is not None else None,
        "categories": list(f.categories) if f.categories is not None else None,
        "nullable": f.nullable,
        "accepted": f.describe_range(),
        "train_min": f.train_min,
        "train_max": f.train_max,
    }


class Endpoints:
    """The handlers, bound to one worker's service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.registry = service.registry
        token = service.settings.admin_token
        self.admin_token = None if token is None else token.get_secret_value().encode()

    def routes(self) -> list[tuple[str, Any, Doc, str]]:
        """(path, handler, documentation, method) of every route here."""
        probe = {"type": "object"}
        table: list[tuple[str, Any, Doc, str]] = [
            (
                "/health/live",
                self.live,
                Doc("Liveness: the process answers", "probes", response=probe, errors=()),
                "GET",
            ),
            (
                "/health/ready",
                self.ready,
                Doc(
                    "Readiness: models loaded and warmed", "probes", response=probe, errors=("503",)
                ),
                "GET",
            ),
            (
                "/metrics",
                self.metrics,
                Doc("Prometheus metrics (text format)", "probes", media=("text/plain",), errors=()),
                "GET",
            ),
            (
                "/v1/models",
                self.v1_models,
                Doc("The served models, the default first", "kserve-v1", response=MODEL_LIST),
                "GET",
            ),
            (
                "/v1/models/{name:model}",
                self.v1_model,
                Doc("Model status and card", "kserve-v1"),
                "GET",
            ),
            ("/v2", self.v2_server, Doc("Server metadata", "v2", errors=()), "GET"),
            ("/v2/health/live", self.live, Doc("Server liveness", "v2", errors=()), "GET"),
            ("/v2/health/ready", self.ready, Doc("Server readiness", "v2", errors=("503",)), "GET"),
        ]
        for prefix in (
            "/v2/models/{name:model}",
            "/v2/models/{name:model}/versions/{version:version}",
        ):
            one = " (one version)" if "version" in prefix else ""
            table.append((prefix, self.v2_model, Doc(f"Model metadata{one}", "v2"), "GET"))
            table.append(
                (
                    f"{prefix}/ready",
                    self.v2_model_ready,
                    Doc(f"Model readiness{one}", "v2", errors=("404", "503")),
                    "GET",
                )
            )
        table += [
            (
                "/v2/repository/index",
                self.repository_index,
                Doc("Repository index", "repository", "post", errors=("401", "403")),
                "POST",
            ),
            (
                "/v2/repository/models/{name:model}/load",
                self.repository_load,
                Doc(
                    "Load a model's versions from the repository",
                    "repository",
                    "post",
                    errors=ADMIN_ERRORS,
                ),
                "POST",
            ),
            (
                "/v2/repository/models/{name:model}/unload",
                self.repository_unload,
                Doc("Unload a model", "repository", "post", errors=ADMIN_ERRORS),
                "POST",
            ),
        ]
        return table

    def _model(self, request: Request) -> LoadedModel:
        params = request.path_params
        return self.registry.resolve(params["name"], params.get("version"))

    def _versions(self, name: str) -> list[str]:
        versions = self.registry.snapshot.models.get(name, {})
        return sorted(v for v in versions if v)

    # --- probes

    async def live(self, _: Request) -> Response:
        return json({"live": True})

    async def ready(self, _: Request) -> Response:
        self.service.require_ready()
        return json({"ready": True})

    async def metrics(self, _: Request) -> Response:
        self.service.tally.flush()
        models = self.registry.snapshot.loaded()
        for model in models:
            model.flush()
        body, content_type = metrics.render(model.watch.drift for model in models)
        return Response(body, media_type=content_type)

    # --- KServe V1 metadata

    async def v1_models(self, _: Request) -> Response:
        """KServe V1 list models: the default model first, then the others by name."""
        if not self.registry.ready:
            self.service.require_ready()
        snapshot = self.registry.snapshot
        default = snapshot.default_model
        names = sorted(snapshot.models, key=lambda name: (name != default, name))
        return json({"models": names})

    async def v1_model(self, request: Request) -> Response:
        model = self._model(request)
        artifact = model.artifact
        card = artifact.card
        schema = model.schema
        report, plots = report_links(artifact)
        return json(
            {
                "name": model.name,
                "ready": self.service.ready,
                "version": model.version,
                "versions": self._versions(model.name),
                "task": schema.task,
                "description": schema.description,
                "features": [_feature(f) for f in schema.features],
                "target": card.get("target"),
                "classes": model.classes,
                "examples": [dict(e) for e in schema.examples],
                "algorithm": card.get("algorithm"),
                "metrics": card.get("metrics"),
                "cv_metrics": card.get("cv_metrics"),
                "training_data": card.get("training_data"),
                "training_data_sha256": card.get("training_data", {}).get("sha256"),
                "trained_at": card.get("trained_at"),
                "intended_use": schema.intended_use,
                "caveats": list(schema.caveats),
                "report": report,
                "plots": plots,
                "drift": model.watch.status().as_dict(),
            }
        )

    # --- Open Inference Protocol metadata and health

    async def v2_server(self, _: Request) -> Response:
        return json({"name": "ml-service", "version": __version__, "extensions": EXTENSIONS})

    async def v2_model(self, request: Request) -> Response:
        model = self._model(request)
        return json(model_metadata(model, self._versions(model.name)))

    async def v2_model_ready(self, request: Request) -> Response:
        model = self._model(request)
        if not self.service.ready:
            raise NotReady(f"model {model.name!r} is not ready")
        return json({"name": model.name, "ready": True})

    # --- the model repository extension

    def _admin(self, request: Request) -> None:
        if self.admin_token is None:
            raise Forbidden(
                "the model repository API is off: set ML_SERVICE_ADMIN_TOKEN to turn it on"
            )
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.admin_token
        ):
            raise Unauthorized(
                "the model repository API needs the admin token: send Authorization: Bearer <token>"
            )

    async def _options(self, request: Request) -> dict[str, Any]:
        """The optional JSON body of a repository call (`{}` when empty)."""
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedJSON(f"body is not valid JSON: {exc}") from None
        return value if isinstance(value, dict) else {}

    async def repository_index(self, request: Request) -> Response:
        self._admin(request)
        options = await self._options(request)
        entries = [e.as_dict() for e in self.registry.index()]
        if options.get("ready") is True:
            entries = [e for e in entries if e["state"] == "READY"]
        return json(entries)

    async def repository_load(self, request: Request) -> Response:
        self._admin(request)
        await self._options(request)
        name = request.path_params["name"]
        plan = await self.service.coordinator.load(name)
        self.registry.refused(plan, name)
        versions = sorted(plan.models.get(name, {}))
        return json({"name": name, "versions": versions, "default": plan.defaults.get(name)})

    async def repository_unload(self, request: Request) -> Response:
        self._admin(request)
        await self._options(request)
        name = request.path_params["name"]
        await self.service.coordinator.unload(name)
        return json({"name": name, "state": "UNAVAILABLE"})
