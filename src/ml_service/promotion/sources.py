"""Where a model to compare comes from: an artifact directory, a registry reference
(`models:/<name>/<version>`, `models:/<name>@<alias>`), or `url:<base URL>`: the model a running
deployment serves, found by the version its V1 card names, in a model repository given with
`--champion-repository` or else in the MLflow registry (the version whose artifact version tag
is that version)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from ml_service import __version__, client
from ml_service.errors import CompareError, ServiceError
from ml_service.model.artifact import MANIFEST
from ml_service.promotion import registry, tracking
from ml_service.promotion.compare import Side, load_side
from ml_service.repository.layout import version_dir

URL_PREFIX = "url:"
ATTEMPTS = 3
TIMEOUT = 10.0


def side(
    role: str,
    source: str,
    work: Path,
    name: str,
    repository: Path | None = None,
    tracking_uri: str | None = None,
) -> Side:
    """The verified artifact `source` names (`name`: the model a `url:` source is asked for);
    registry downloads go into `work`."""
    try:
        if source.startswith(URL_PREFIX):
            version = served_version(source.removeprefix(URL_PREFIX), name)
            return load_side(role, source, _find(name, version, work, repository, tracking_uri))
        if registry.is_reference(source):
            pulled = registry.pull(source, work, tracking_uri)
            return load_side(role, source, pulled.path)
    except CompareError:
        raise
    except ServiceError as exc:
        raise CompareError(f"the {role} ({source}): {exc.message}") from None
    return load_side(role, source, Path(source))


def served_version(url: str, name: str) -> str:
    """The version of model `name` the service at `url` serves by default (its V1 card), with
    the API key from `ML_SERVICE_API_KEY` when set."""
    if not url.startswith(("http://", "https://")):
        raise CompareError(f"url:{url}: give an http:// or https:// address")
    endpoint = f"{url.rstrip('/')}/v1/models/{name}"
    headers = {"user-agent": f"ml-service/{__version__}"}
    key = client.api_key()
    if key:
        headers["authorization"] = f"Bearer {key}"
    last = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.25 * 2**attempt)
        try:
            response = httpx.get(endpoint, headers=headers, timeout=TIMEOUT)
        except httpx.TransportError as exc:
            last = f"cannot reach {endpoint}: {exc.__class__.__name__}: {exc}"
            continue
        if response.status_code in (502, 503, 504):
            last = f"{endpoint} answered {response.status_code}"
            continue
        return _version(endpoint, response)
    raise CompareError(f"the champion: {last} (after {ATTEMPTS} attempts)")


def _version(endpoint: str, response: httpx.Response) -> str:
    if response.status_code == 401:
        raise CompareError(f"{endpoint} answered 401: set ML_SERVICE_API_KEY to a key it accepts")
    if response.status_code == 404:
        raise CompareError(f"{endpoint} answered 404: the deployment serves no such model")
    if response.status_code != 200:
        raise CompareError(f"{endpoint} answered {response.status_code}")
    try:
        card: Any = response.json()
        version = card["version"]
    except (ValueError, KeyError, TypeError):
        raise CompareError(f"{endpoint}: not an ml-service model card (no version)") from None
    if not isinstance(version, str) or not version:
        raise CompareError(f"{endpoint}: the card's version is not a version string")
    return version


def _find(
    name: str, version: str, work: Path, repository: Path | None, tracking_uri: str | None
) -> Path:
    """Version `version` of `name`: from the repository, else from the registry."""
    tried = []
    if repository is not None:
        path = version_dir(repository, name, version)
        if (path / MANIFEST).is_file():
            return path
        tried.append(f"not in --champion-repository {repository}")
    uri = tracking.tracking_uri(tracking_uri)
    if uri is not None:
        found = registry.find_artifact_version(name, version, uri)
        if found is not None:
            reference = registry.Reference(name, str(found.version))
            return registry.fetch(tracking.client(uri), uri, reference, found, work).path
        tried.append(
            f"no version of registered model {name!r} in MLflow at "
            f"{tracking.shown(uri)} is tagged {tracking.VERSION_TAG}={version}"
        )
    else:
        tried.append(f"no MLflow registry to look in ({tracking.TRACKING_ENV} is not set)")
    raise CompareError(
        f"the champion serves {name} version {version}, whose artifact was not found: "
        + "; ".join(tried)
    )
