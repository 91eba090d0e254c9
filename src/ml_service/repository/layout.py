"""The model repository on disk: which model versions a server can serve.

Two layouts: one artifact directory (`ML_SERVICE_MODEL_DIR`), or a repository directory
(`ML_SERVICE_MODEL_REPOSITORY`) laid out `<name>/<version>/`, each leaf an artifact whose
manifest names that model and version. Hidden entries are skipped: `ml-service train` builds a
version in a hidden directory beside it and renames it into place, so a version appears whole
or not at all.

Scanning reads only manifests; verifying and loading the files is the registry's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ml_service.errors import ArtifactError
from ml_service.model.artifact import MANIFEST, read_manifest


@dataclass(frozen=True, slots=True)
class Version:
    """One model version found on disk (or why it cannot be used: `problem`)."""

    name: str
    version: str
    path: Path
    created_at: str = ""
    problem: str | None = None


def version_dir(root: Path, name: str, version: str) -> Path:
    """Where version `version` of model `name` lives in the repository at `root`."""
    return root / name / version


def scan_artifact(path: Path) -> Version:
    """The single artifact at `path` (its name and version from its manifest)."""
    try:
        manifest = read_manifest(path)
    except ArtifactError as exc:
        return Version(path.name, "", path, problem=exc.message)
    return Version(manifest.name, manifest.version, path, manifest.created_at)


def scan_repository(root: Path, names: Iterable[str] | None = None) -> dict[str, list[Version]]:
    """Every version of every model (or of `names`) under `root`, oldest first.

    A name asked for but absent maps to an empty list. Versions whose manifest cannot be read,
    or names another model or version than its directory, are listed with their problem.
    """
    wanted = None if names is None else set(names)
    found: dict[str, list[Version]] = {name: [] for name in wanted or ()}
    try:
        model_dirs = sorted(p for p in root.iterdir() if _visible_dir(p))
    except OSError as exc:
        raise ArtifactError(
            f"{root}: cannot read the model repository: {exc.strerror or exc}"
        ) from exc
    for model_dir in model_dirs:
        name = model_dir.name
        if wanted is not None and name not in wanted:
            continue
        versions = [
            _version(name, path)
            for path in sorted(model_dir.iterdir())
            if _visible_dir(path) and (path / MANIFEST).exists()
        ]
        found[name] = sorted(versions, key=lambda v: (v.created_at, v.version))
    return found


def newest(versions: Iterable[Version], pinned: Mapping[str, str] | None = None) -> str | None:
    """The default version among usable `versions`: the pinned one, else the newest trained."""
    usable = [v for v in versions if v.problem is None]
    if not usable:
        return None
    pin = (pinned or {}).get(usable[0].name)
    if pin is not None:
        return pin if any(v.version == pin for v in usable) else None
    return max(usable, key=lambda v: (v.created_at, v.version)).version


def _visible_dir(path: Path) -> bool:
    return not path.name.startswith(".") and path.is_dir() and not path.is_symlink()


def _version(name: str, path: Path) -> Version:
    try:
        manifest = read_manifest(path)
    except ArtifactError as exc:
        return Version(name, path.name, path, problem=exc.message)
    if manifest.name != name or manifest.version != path.name:
        return Version(
            name,
            path.name,
            path,
            manifest.created_at,
            problem=f"{path / MANIFEST}: holds model {manifest.name!r} version "
            f"{manifest.version!r}, not {name!r} {path.name!r}; move it to "
            f"{name}/{manifest.version} or retrain with --repository",
        )
    return Version(name, manifest.version, path, manifest.created_at)
