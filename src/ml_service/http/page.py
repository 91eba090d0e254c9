"""The home page and the model report, as the service serves them.

The page is a static shell (`templates/home.html`, the same bytes whether API keys are on or
off) that draws itself from the API: `GET /v1/models` for the picker, `GET /v1/models/{name}`
for the form (one labelled input per feature), the samples and the model card, and KServe V1
`:predict` for single rows and CSV batches. When the API answers 401 the page asks for a key
once. Its behaviour lives in `static/app.js`, its look in `static/app.css`: the
Content-Security-Policy allows no inline script or style and nothing from another host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ml_service.config import Settings
from ml_service.errors import NotFound
from ml_service.http.openapi import Doc
from ml_service.model.artifact import ServingArtifact, read_verified
from ml_service.model.metrics import LABELS
from ml_service.model.report import PLOTS, REPORT_DIR, REPORT_FILE
from ml_service.model.schema import MISSING_TOKENS
from ml_service.repository.registry import Registry

__all__ = [
    "KEY_STORE",
    "REPORT_DIR",
    "REPORT_FILE",
    "STATIC",
    "Pages",
    "favicon",
    "report_file",
    "report_links",
    "shell",
]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))

# Plots are fetched with the API key and shown from `blob:` URLs, hence `img-src blob:`.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MEDIA_TYPES = {".svg": "image/svg+xml", ".css": "text/css; charset=utf-8", ".png": "image/png"}
REPORT_MEDIA = ("text/html", "image/svg+xml", "text/css", "image/png")
# Where the page keeps an API key for the tab (static/docs/start.js reads the same entry).
KEY_STORE = "ml-service.api-key"
# The page's CSV upload: larger files are for `ml-service score`.
BATCH_MAX_ROWS = 20_000
BATCH_MAX_BYTES = 4 * 1_048_576
BATCH_ROWS_PER_REQUEST = 1000


class Pages:
    """The page and report routes, over one worker's registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.shell = shell(registry.settings)

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

    async def home(self, _: Request) -> Response:
        """The page's shell; it reads `?model=` itself and asks the API for the rest."""
        return HTMLResponse(self.shell, headers=SECURITY_HEADERS)

    async def report(self, request: Request) -> Response:
        params = request.path_params
        model = self.registry.resolve(params.get("name"), params.get("version"))
        file = params.get("file")
        return report_file(model.artifact, f"{REPORT_DIR}/{file}" if file else REPORT_FILE)

    async def favicon(self, _: Request) -> Response:
        return favicon()


def shell(settings: Settings) -> bytes:
    """The home page's HTML: no model data, only what the page needs before it asks the API
    (metric names, the upload limits, where it keeps a key)."""
    config = {
        "keyStore": KEY_STORE,
        "metricLabels": LABELS,
        "missing": list(MISSING_TOKENS),
        "batch": {
            "maxRows": BATCH_MAX_ROWS,
            "maxBytes": BATCH_MAX_BYTES,
            "rowsPerRequest": min(BATCH_ROWS_PER_REQUEST, settings.max_rows),
            "bodyBytes": settings.max_body_bytes,
        },
    }
    return _env.get_template("home.html").render(config=config).encode()


def report_links(artifact: ServingArtifact) -> tuple[str | None, list[dict[str, str]]]:
    """The report's address (None when the artifact has none) and the plots its manifest
    holds, each with its address, title and text alternative."""
    files = artifact.manifest.files
    if REPORT_FILE not in files:
        return None, []
    base = f"/models/{artifact.name}/versions/{artifact.version}/report"
    plots = [
        {"url": f"{base}/{p.file}", "title": p.title, "alt": p.alt}
        for p in PLOTS
        if f"{REPORT_DIR}/{p.file}" in files
    ]
    return base, plots


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
