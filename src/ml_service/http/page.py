"""The home page and the model report, as the service serves them.

The page is generated from the served model's schema and card: one labelled input per feature
(meaning, unit and accepted range as input constraints), sample houses from real rows, a CSV
batch form and the model card with the report's plots. Its behaviour lives in
`static/app.js`, its look in `static/app.css`: the Content-Security-Policy allows no inline
script or style and nothing from another host.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ml_service.errors import NotFound, NotReady
from ml_service.http.openapi import Doc
from ml_service.model.artifact import ServingArtifact, read_verified
from ml_service.model.report import PLOTS, REPORT_DIR, REPORT_FILE
from ml_service.model.schema import Feature, _fmt
from ml_service.repository.registry import Registry

__all__ = ["REPORT_DIR", "REPORT_FILE", "STATIC", "Pages", "favicon", "render", "report_file"]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MEDIA_TYPES = {".svg": "image/svg+xml", ".css": "text/css; charset=utf-8", ".png": "image/png"}
REPORT_MEDIA = ("text/html", "image/svg+xml", "text/css", "image/png")
# A target unit such as "$1000s" means dollars times 1000.
_SCALED_DOLLARS = re.compile(r"^\$\s*([0-9][0-9,]*)s?$")


class Pages:
    """The page and report routes, over one worker's registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def routes(self) -> list[tuple[str, Any, Doc | None]]:
        table: list[tuple[str, Any, Doc | None]] = [
            (
                "/",
                self.home,
                Doc("Prediction web page", "page", errors=(), media=("text/html",)),
            ),
            ("/favicon.ico", self.favicon, None),
        ]
        for prefix in (
            "/model",
            "/models/{name:model}",
            "/models/{name:model}/versions/{version:version}",
        ):
            table.append(
                (f"{prefix}/report", self.report, Doc("Model report", "page", media=("text/html",)))
            )
            table.append(
                (
                    f"{prefix}/report/{{file:path}}",
                    self.report,
                    Doc("Model report plots and style", "page", media=REPORT_MEDIA),
                )
            )
        return table

    async def home(self, request: Request) -> Response:
        """The page for `?model=` (and `&version=`), else the default (or first) model."""
        registry = self.registry
        name = request.query_params.get("model")
        version = request.query_params.get("version")
        models = sorted(registry.snapshot.models)
        try:
            model = registry.resolve(name or (models[0] if len(models) == 1 else None), version)
        except NotFound:
            if name is not None or not models:
                raise
            model = registry.resolve(models[0])
        except NotReady as exc:
            return render(None, exc.message, models)
        return render(model.artifact, None, models)

    async def report(self, request: Request) -> Response:
        params = request.path_params
        model = self.registry.resolve(params.get("name"), params.get("version"))
        file = params.get("file")
        return report_file(model.artifact, f"{REPORT_DIR}/{file}" if file else REPORT_FILE)

    async def favicon(self, _: Request) -> Response:
        return favicon()


def render(
    artifact: ServingArtifact | None, error: str | None, models: list[str] | None = None
) -> HTMLResponse:
    """The home page for one served model (a notice when there is none), with a picker when
    the server serves several `models`."""
    context: dict[str, Any] = {"artifact": artifact, "error": error, "models": models or []}
    if artifact is not None:
        context.update(_model_context(artifact))
    html = _env.get_template("home.html").render(**context)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


def _model_context(artifact: ServingArtifact) -> dict[str, Any]:
    schema = artifact.schema
    card = artifact.card
    target = schema.target
    display = target_display(target.unit)
    has_report = REPORT_FILE in artifact.manifest.files
    return {
        "schema": schema,
        "card": card,
        "fields": [field_context(f) for f in schema.features],
        "examples": schema.examples,
        "has_report": has_report,
        "report_path": f"/models/{artifact.name}/versions/{artifact.version}/report",
        "plots": [
            {
                "src": f"/models/{artifact.name}/versions/{artifact.version}/report/{p.file}",
                "title": p.title,
                "alt": p.alt,
            }
            for p in PLOTS
            if f"{REPORT_DIR}/{p.file}" in artifact.manifest.files
        ],
        "page_data": {
            "model": artifact.name,
            "version": artifact.version,
            "predictUrl": f"/v1/models/{artifact.name}:predict",
            "features": list(schema.names),
            "target": {"name": target.name, "unit": target.unit, **display},
            "examples": list(schema.examples),
            "batchRows": 1000,
        },
    }


def target_display(unit: str) -> dict[str, Any]:
    """How to show a prediction in plain units: `$1000s` → scale 1000, in dollars."""
    match = _SCALED_DOLLARS.match(unit.strip())
    if match:
        return {"scale": float(match.group(1).replace(",", "")), "currency": "USD"}
    return {"scale": 1.0, "currency": None}


def field_context(feature: Feature) -> dict[str, Any]:
    """What the template needs to draw one feature's input and its help text."""
    help_parts = [feature.unit] if feature.unit else []
    help_parts.append(f"accepted: {feature.describe_range()}")
    if feature.train_min is not None and feature.train_max is not None:
        help_parts.append(f"training data: {_fmt(feature.train_min)} to {_fmt(feature.train_max)}")
    return {
        "name": feature.name,
        "id": f"f-{feature.name}",
        "description": feature.description,
        "help": "; ".join(help_parts),
        "allowed": [_fmt(v) for v in feature.allowed] if feature.allowed is not None else None,
        "min": _fmt(feature.min) if math.isfinite(feature.min) else None,
        "max": _fmt(feature.max) if math.isfinite(feature.max) else None,
        "placeholder": _fmt(feature.train_min) if feature.train_min is not None else "",
    }


def report_file(artifact: ServingArtifact, name: str) -> Response:
    """A report file from a served artifact, checked against its manifest digest."""
    if name != REPORT_FILE and not name.startswith(f"{REPORT_DIR}/"):
        raise NotFound(f"no such report file: {name}")
    if name not in artifact.manifest.files or ".." in Path(name).parts:
        if name == REPORT_FILE:
            raise NotFound("this model was trained without a report; retrain it to get one")
        raise NotFound(f"no such report file: {name}")
    data = read_verified(artifact.path, artifact.manifest, name)
    suffix = Path(name).suffix
    if suffix == ".html":
        return HTMLResponse(data, headers=SECURITY_HEADERS)
    media = MEDIA_TYPES.get(suffix, "application/octet-stream")
    return Response(
        data,
        media_type=media,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def favicon() -> Response:
    """The site icon, for pages (such as the report) that do not name one."""
    return Response(
        (STATIC / "favicon.svg").read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "max-age=86400"},
    )
