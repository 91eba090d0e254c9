"""The OpenAPI document, generated from the route table and the served models' schemas, and
the interactive docs page (Swagger UI from pinned local assets under `static/docs/`).

Each route in the table carries its documentation (`Doc`); a prediction route's request and
response bodies come from its codec, for every served model (one example per model), so the
document always describes what the server accepts right now. It is rebuilt when the set of
served models changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ml_service import __version__
from ml_service.http.codecs.base import Codec
from ml_service.http.responses import JSON_TYPE, dumps
from ml_service.repository.registry import LoadedModel, Registry

ERRORS = {
    "400": "Body is not valid JSON",
    "401": "Missing or wrong API key (when keys are configured)",
    "404": "Unknown path, model or version",
    "405": "Wrong method",
    "413": "Body or row count over the limit",
    "415": "Not JSON",
    "422": "Valid JSON that breaks the input schema; every problem is listed",
    "503": "Model not loaded, shutting down, or too busy",
}
ERROR_BODY = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "One sentence a person can act on"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
                "required": ["loc", "msg"],
            },
        },
    },
    "required": ["error"],
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ml-service API</title>
<link rel="stylesheet" href="/static/docs/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/docs/swagger-ui-bundle.js"></script>
<script src="/static/docs/start.js"></script>
</body>
</html>
"""


@dataclass(frozen=True)
class Doc:
    """How the document shows one route: summary, tag, and what it answers."""

    summary: str
    tag: str
    method: str = "get"
    codec: Codec | None = None
    response: dict[str, Any] | None = None
    errors: tuple[str, ...] = ("404",)
    media: tuple[str, ...] = ("application/json",)
    extra: dict[str, Any] = field(default_factory=dict)


class OpenAPI:
    """The document for one route table, cached per set of served models."""

    def __init__(self, registry: Registry, routes: list[tuple[str, Doc]]) -> None:
        self.registry = registry
        self.routes = routes
        self._cache: tuple[object, dict[str, Any]] | None = None

    async def endpoint(self, _: Request) -> Response:
        """`GET /openapi.json`."""
        return Response(dumps(self.document()), media_type=JSON_TYPE.decode())

    def document(self) -> dict[str, Any]:
        snapshot = self.registry.snapshot
        if self._cache is None or self._cache[0] is not snapshot:
            self._cache = (snapshot, self._build())
        return self._cache[1]

    def _build(self) -> dict[str, Any]:
        snapshot = self.registry.snapshot
        models = [versions[None] for versions in snapshot.models.values()]
        default = snapshot.models.get(snapshot.default_model or "", {}).get(None)
        names = sorted(snapshot.models)
        versions = sorted({v for vs in snapshot.models.values() for v in vs if v})
        paths: dict[str, dict[str, Any]] = {}
        for path, doc in self.routes:
            template, parameters = _openapi_path(path, names, versions)
            operation: dict[str, Any] = {
                "summary": doc.summary,
                "tags": [doc.tag],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {m: {"schema": doc.response or {}} for m in doc.media},
                    },
                    **{code: _error(code) for code in doc.errors},
                },
                **doc.extra,
            }
            if parameters:
                operation["parameters"] = parameters
            if doc.codec is not None:
                served = [default] if "{name}" not in template and default else models
                operation.update(_prediction(doc.codec, served))
            paths.setdefault(template, {})[doc.method] = operation
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "ml-service",
                "version": __version__,
                "summary": "Tabular models served in three dialects: the original /predict, "
                "KServe V1 and the Open Inference Protocol (V2).",
            },
            "paths": paths,
            "components": {"schemas": {"Error": ERROR_BODY}},
        }


async def docs_page(_: Request) -> HTMLResponse:
    """Swagger UI, every asset from this server."""
    return HTMLResponse(
        DOCS_PAGE,
        headers={
            "Content-Security-Policy": DOCS_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def _prediction(codec: Codec, models: list[LoadedModel]) -> dict[str, Any]:
    """A prediction operation's request body and answer, for every served model."""
    if not models:
        return {}
    requests = _one_of([codec.request_schema(m.schema) for m in models])
    responses = _one_of([codec.response_schema(m.schema) for m in models])
    examples = {m.name: {"value": codec.example(m.schema)} for m in models}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": requests, "examples": examples}},
        },
        "responses": {
            "200": {"description": "Predictions", "content": _json(responses)},
            **{code: _error(code) for code in ("400", "404", "413", "415", "422", "503")},
        },
    }


def _one_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    unique = [s for i, s in enumerate(schemas) if s not in schemas[:i]]
    return unique[0] if len(unique) == 1 else {"oneOf": unique}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(code: str) -> dict[str, Any]:
    return {
        "description": ERRORS.get(code, "Error"),
        "content": _json({"$ref": "#/components/schemas/Error"}),
    }


def _openapi_path(
    path: str, names: list[str], versions: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    """A route path as OpenAPI writes it (`{name:model}` → `{name}`), with its parameters."""
    template = path.replace("{name:model}", "{name}").replace("{version:version}", "{version}")
    template = template.replace("{file:path}", "{file}")
    parameters = []
    for name, values in (("name", names), ("version", versions), ("file", None)):
        if "{" + name + "}" in template:
            schema: dict[str, Any] = {"type": "string"}
            if values:
                schema["enum"] = values
            parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return template, parameters
