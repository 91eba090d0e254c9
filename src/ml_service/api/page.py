"""The home page: a form generated from the served model's schema."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ml_service.api.state import ServiceState

TEMPLATES = Path(__file__).parent / "templates"
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


def render(state: ServiceState) -> HTMLResponse:
    loaded = state.loaded
    artifact = loaded.artifact if loaded else None
    html = _env.get_template("home.html").render(
        artifact=artifact,
        schema=artifact.schema if artifact else None,
        card=artifact.card if artifact else {},
        error=state.load_error,
    )
    return HTMLResponse(html, headers=SECURITY_HEADERS)
