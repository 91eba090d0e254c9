"""The ASGI application: one route table behind one request pipeline.

Every endpoint is a route here, predictions first (a prediction request matches on its first
regular expression and runs as a raw ASGI endpoint, with no framework objects per request);
every request passes `Pipeline` once. `app` is what servers import (`ml_service.server.APP`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette import routing
from starlette.convertors import (
    Convertor,
    PathConvertor,
    StringConvertor,
    register_url_convertor,
)
from starlette.routing import BaseRoute, Match, Mount, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from ml_service.config import Settings, get_settings
from ml_service.errors import NotFound
from ml_service.http import page
from ml_service.http.codecs import CODECS
from ml_service.http.endpoints import Endpoints
from ml_service.http.openapi import Doc, OpenAPI, docs_page
from ml_service.http.pipeline import Pipeline
from ml_service.http.predict import PredictEndpoint
from ml_service.http.service import Service
from ml_service.observability import tracing

# Paths anyone may read when API keys are on: the probes and the page's static shell.
PUBLIC = frozenset(
    {
        "/health/live",
        "/health/ready",
        "/v2/health/live",
        "/v2/health/ready",
        "/",
        "/docs",
        "/favicon.ico",
    }
)
PUBLIC_PREFIXES = ("/static/",)
# Probes are never shed, however busy the worker is.
UNLIMITED = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"})
# The repository API checks the admin token itself, instead of an API key.
ADMIN_PREFIX = "/v2/repository/"


class _Name(Convertor[str]):
    """Model names and versions in paths: what a directory name in the repository can be."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model", _Name())
register_url_convertor("version", _Name())
# Convertors that hand the matched text over as it is: a route using only these needs no
# conversion step.
_TEXT = (_Name, StringConvertor, PathConvertor)


class Route(routing.Route):
    """Starlette's route, matching in one step when it can.

    At the top of the table (no root path, no enclosing route's parameters) and with text
    parameters only, a match is the regular expression's groups as they are; this is every
    route here, and the prediction routes are matched once per request. Anything else is
    matched by Starlette itself.
    """

    def __init__(self, path: str, endpoint: Any, methods: list[str]) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.plain = all(isinstance(c, _TEXT) for c in self.param_convertors.values())

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not self.plain or scope.get("root_path") or "path_params" in scope:
            return super().matches(scope)
        if scope["type"] != "http":
            return Match.NONE, {}
        found = self.path_regex.match(scope["path"])
        if found is None:
            return Match.NONE, {}
        child = {"endpoint": self.endpoint, "path_params": found.groupdict()}
        methods = self.methods
        if methods and scope["method"] not in methods:
            return Match.PARTIAL, child
        return Match.FULL, child


class TableRouter(Router):
    """Starlette's router over the one route table, with the table's fixed paths (no
    parameters) found by one dictionary lookup instead of a walk.

    A fixed path is indexed only when no route before it in the table matches it too, so the
    lookup finds what the walk would; a method the route does not take, and every other path,
    go through Starlette's walk (405, parameters, mounts, the default 404).
    """

    def __init__(self, routes: list[BaseRoute], **options: Any) -> None:
        super().__init__(routes, **options)
        self.fixed: dict[str, Route] = {}
        for index, route in enumerate(routes):
            if not (isinstance(route, Route) and route.plain and not route.param_convertors):
                continue
            earlier = routes[:index]
            if route.path not in self.fixed and not any(_claims(r, route.path) for r in earlier):
                self.fixed[route.path] = route

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.fixed.get(scope["path"])
            if route is not None and scope["method"] in route.methods:  # type: ignore[operator]
                scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                await route.app(scope, receive, send)
                return
        await super().app(scope, receive, send)


def _claims(route: BaseRoute, path: str) -> bool:
    """Would `route`, earlier in the table, take a request for `path`?"""
    if isinstance(route, Mount):
        return path == route.path or path.startswith(route.path + "/")
    regex = getattr(route, "path_regex", None)
    return regex is None or regex.match(path) is not None


class App:
    """The application servers run; `state` is the worker's `Service`."""

    def __init__(self, settings: Settings) -> None:
        self.state = Service(settings)
        self.router, self.docs = _routes(self.state)
        pipeline = Pipeline(
            self.router,
            self.state,
            public=PUBLIC,
            public_prefixes=(*PUBLIC_PREFIXES, ADMIN_PREFIX),
            unlimited=UNLIMITED,
        )
        self._entry = tracing.instrument(pipeline, settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)


def _routes(service: Service) -> tuple[Router, OpenAPI]:
    """The route table, and the OpenAPI document that describes it."""
    handlers = Endpoints(service)
    pages = page.Pages(service.registry)
    routes: list[BaseRoute] = []
    documented: list[tuple[str, Doc]] = []

    def add(path: str, endpoint: Any, doc: Doc | None = None, method: str = "GET") -> None:
        routes.append(Route(path, endpoint, methods=[method]))
        if doc is not None:
            documented.append((path, doc))

    for codec in CODECS:
        endpoint = PredictEndpoint(codec, service)
        for spec in codec.endpoints:
            add(spec.path, endpoint, Doc(spec.summary, codec.tag, "post", codec), "POST")
    for path, handler, doc, method in handlers.routes():
        add(path, handler, doc, method)
    for path, page_handler, page_doc in pages.routes():
        add(path, page_handler, page_doc)
    openapi = OpenAPI(service.registry, documented)
    if service.settings.docs:
        add("/openapi.json", openapi.endpoint)
        add("/docs", docs_page)
    routes.append(Mount("/static", StaticFiles(directory=page.STATIC), name="static"))

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with service.running():
            yield

    router = TableRouter(routes, redirect_slashes=False, default=_not_found, lifespan=lifespan)
    return router, openapi


async def _not_found(scope: Scope, _receive: Receive, _send: Send) -> None:
    raise NotFound(f"no such path: {scope['path']}")


def create_app(settings: Settings | None = None) -> App:
    """A new application for `settings` (default: from the environment)."""
    return App(settings or get_settings())


def __getattr__(name: str) -> Any:
    # `app` is built on first access, so importing this module has no side effects.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
