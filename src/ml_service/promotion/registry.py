"""The MLflow model registry as a source of artifacts: `models:/<name>/<version>` and
`models:/<name>@<alias>` downloaded into a model repository, verified, then served as any other.

A registered version made by `ml-service train --tracking-uri` is the artifact directory, plain
files, tagged with the artifact's version string and its manifest's SHA-256. Downloading one
lands it in a hidden directory of the repository, where it must pass, before it is renamed to
`<repository>/<name>/<artifact version>/`: regular files and directories only (no links, no
file the manifest does not list: an MLflow flavour or a pickle is refused, never loaded), the
manifest's SHA-256 equal to the tag, its model name and version equal to the registered ones,
and every listed file equal to its digest. A version already in the repository is kept when its
manifest has the registered digest (no download), refused when it differs.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_service.config import REGISTRY_REFERENCE
from ml_service.errors import ArtifactError, TrackingError
from ml_service.model import artifact
from ml_service.promotion import tracking
from ml_service.repository.layout import version_dir

PREFIX = "models:/"
PARTS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>.+)|@(?P<alias>.+))$")


@dataclass(frozen=True)
class Reference:
    """A parsed `models:/` reference: a registered model's version number or alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{PREFIX}{self.name}" + (f"/{self.version}" if self.version else f"@{self.alias}")


@dataclass(frozen=True)
class Pulled:
    """A registered version in the repository: where, which artifact, and whether it was
    downloaded now (False: the repository already held it)."""

    reference: Reference
    registered_version: str
    artifact_version: str
    path: Path
    downloaded: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": str(self.reference),
            "name": self.reference.name,
            "registered_version": self.registered_version,
            "version": self.artifact_version,
            "path": str(self.path),
            "downloaded": self.downloaded,
        }


def parse(text: str) -> Reference:
    """`models:/<name>/<version>` or `models:/<name>@<alias>`, else `TrackingError`."""
    found = PARTS.match(text.strip())
    if found is None or not REGISTRY_REFERENCE.match(text.strip()):
        raise TrackingError(
            f"{text}: not a registry reference; use models:/<name>/<version> or "
            "models:/<name>@<alias>"
        )
    return Reference(found["name"], found["version"], found["alias"])


def is_reference(text: str) -> bool:
    return text.startswith(PREFIX)


def required_uri(uri: str | None = None) -> str:
    """The tracking URI to read the registry from: `uri`, else `MLFLOW_TRACKING_URI`."""
    found = tracking.tracking_uri(uri)
    if found is None:
        raise TrackingError(
            f"a models:/ reference needs the MLflow registry: set {tracking.TRACKING_ENV}"
        )
    return found


def resolve(mlflow: Any, uri: str, reference: Reference) -> Any:
    """The registered `ModelVersion` a reference names, with a clear error when there is none."""
    from mlflow.exceptions import MlflowException

    where = f"MLflow at {tracking.shown(uri)}"
    with tracking.errors(uri, f"reading {reference}"):
        try:
            mlflow.get_registered_model(reference.name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise TrackingError(
                    f"{reference}: {where} has no registered model {reference.name!r}"
                ) from None
            raise
        try:
            if reference.alias is not None:
                return mlflow.get_model_version_by_alias(reference.name, reference.alias)
            return mlflow.get_model_version(reference.name, reference.version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                what = (
                    f"no alias {reference.alias!r}"
                    if reference.alias is not None
                    else f"no version {reference.version}"
                )
                raise TrackingError(
                    f"{reference}: registered model {reference.name!r} in {where} has {what}"
                ) from None
            raise


def pull(text: str, repository: Path, uri: str | None = None) -> Pulled:
    """Download the version `text` names into `repository` (verified), or find it there."""
    reference = parse(text)
    uri = required_uri(uri)
    mlflow = tracking.client(uri)
    found = resolve(mlflow, uri, reference)
    return fetch(mlflow, uri, reference, found, repository)


def fetch(mlflow: Any, uri: str, reference: Reference, found: Any, repository: Path) -> Pulled:
    """The registered version `found` in `repository`: kept when present, else downloaded."""
    tags = dict(found.tags or {})
    version = tags.get(tracking.VERSION_TAG)
    sha256 = tags.get(tracking.MANIFEST_TAG)
    registered = f"{reference.name} version {found.version}"
    if not version or not sha256 or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise TrackingError(
            f"{reference}: {registered} has no {tracking.VERSION_TAG} and "
            f"{tracking.MANIFEST_TAG} tags: it was not registered by ml-service train"
        )
    target = version_dir(repository, reference.name, version)
    if target.exists() or target.is_symlink():
        try:
            artifact.read_manifest(target, sha256)
        except ArtifactError as exc:
            raise TrackingError(
                f"{reference}: {target} already holds a different artifact than {registered} "
                f"({exc.message}); remove it or pull into another repository"
            ) from None
        return Pulled(reference, str(found.version), version, target, downloaded=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-pull-", dir=target.parent))
    try:
        import mlflow.artifacts

        with tracking.errors(uri, f"downloading {registered}"):
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=found.source, dst_path=str(staging), tracking_uri=uri
                )
            )
        verify_download(local, reference.name, version, sha256, registered)
        local.chmod(0o755)
        local.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Pulled(reference, str(found.version), version, target, downloaded=True)


def verify_download(path: Path, name: str, version: str, sha256: str, registered: str) -> None:
    """Refuse a downloaded artifact that is not exactly what was registered (see the module
    docstring); `TrackingError` says what is wrong."""
    if not path.is_dir() or path.is_symlink():
        raise TrackingError(f"{registered}: its source is not an artifact directory")
    files = set()
    for root, dirs, names in os.walk(path):
        for entry in [*dirs, *names]:
            full = Path(root) / entry
            mode = os.lstat(full).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise TrackingError(
                    f"{registered}: {full.relative_to(path)} is not a plain file or directory; "
                    "an artifact holds plain files only"
                )
            if stat.S_ISREG(mode):
                files.add(full.relative_to(path).as_posix())
    try:
        data = artifact.read_file(path, artifact.MANIFEST, limit=artifact.MAX_MANIFEST_BYTES)
        if artifact.digest(data) != sha256:
            raise TrackingError(
                f"{registered}: its manifest's SHA-256 is {artifact.digest(data)}, not the "
                f"{sha256} recorded when it was registered"
            )
        manifest = artifact.verify(path)
    except ArtifactError as exc:
        raise TrackingError(f"{registered}: refused: {exc.message}") from None
    if (manifest.name, manifest.version) != (name, version):
        raise TrackingError(
            f"{registered}: holds model {manifest.name!r} version {manifest.version!r}, not "
            f"{name!r} {version!r} as registered"
        )
    unlisted = sorted(files - set(manifest.files) - {artifact.MANIFEST})
    if unlisted:
        raise TrackingError(
            f"{registered}: holds files its manifest does not list ({', '.join(unlisted[:5])}); "
            "only the artifact's own files are accepted (never an MLflow flavour)"
        )


def find_artifact_version(name: str, version: str, uri: str | None = None) -> Any | None:
    """The registered version of model `name` whose artifact version tag is `version`, if any
    (the newest such registration)."""
    uri = required_uri(uri)
    mlflow = tracking.client(uri)
    with tracking.errors(uri, f"searching model {name!r} for artifact version {version}"):
        found = mlflow.search_model_versions(
            f"name = '{name}' and tags.`{tracking.VERSION_TAG}` = '{version}'"
        )
    if not found:
        return None
    return max(found, key=lambda v: int(v.version))


def pull_for_serving(references: tuple[str, ...], repository: Path) -> list[Pulled]:
    """What `ML_SERVICE_REGISTRY_MODELS` asks for, in the repository before any worker starts;
    every reference is tried and every failure named in one `TrackingError`."""
    import logging

    log = logging.getLogger("ml_service.registry")
    pulled, problems = [], []
    for text in references:
        try:
            found = pull(text, repository)
        except TrackingError as exc:
            problems.append(exc.message)
            continue
        pulled.append(found)
        log.info(
            "%s: %s version %s (registered version %s) %s %s",
            text,
            found.reference.name,
            found.artifact_version,
            found.registered_version,
            "downloaded to" if found.downloaded else "already in",
            found.path,
            extra={
                "event": "registry_pull",
                "model": found.reference.name,
                "version": found.artifact_version,
            },
        )
    if problems:
        raise TrackingError("; ".join(problems))
    return pulled
