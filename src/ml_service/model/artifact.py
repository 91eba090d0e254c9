"""The model artifact: one directory that carries a model from training to every server.

Layout (each file listed with its SHA-256 and size in `manifest.json`):

- `model.onnx`: the fitted pipeline as an ONNX graph — what the server runs. ONNX is data, not
  code: loading it cannot execute anything.
- `model.skops`: the same pipeline for scikit-learn, loaded with skops and an explicit list of
  trusted types (never plain pickle). Used to compare and to inspect, never by the server.
- `schema.json`, `card.json`, `card.md`: the feature schema and the model card.
- `holdout.csv`: the held-out rows as read from the data file (the features and the target),
  what `ml-service compare` scores by default; `promotion.json`: the model's promotion policy.
- anything else training adds (the report), also digested.

Every file is checked against the manifest before it is used; a missing, truncated, modified or
incompatible artifact raises `ArtifactError` naming the file and the problem.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml_service.errors import ArtifactError
from ml_service.model.schema import ModelSchema

FORMAT = "ml-service-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
SKOPS_FILE = "model.skops"
SCHEMA_FILE = "schema.json"
CARD_JSON = "card.json"
CARD_MD = "card.md"
HOLDOUT_FILE = "holdout.csv"
REQUIRED = (ONNX_FILE, SKOPS_FILE, SCHEMA_FILE, CARD_JSON)
ONNX_OPSETS = {"": 17, "ai.onnx.ml": 3}
ONNX_INPUT = "input"
# Nothing in an artifact is read past these sizes (the default model's files are well under).
MAX_MANIFEST_BYTES = 1 << 20
MAX_FILE_BYTES = 512 << 20
# Types skops may rebuild beyond its safe defaults (what the candidate models hold: tree
# structures, histogram boosting's tree predictors, numpy dtypes of the one-hot encoder's
# categories); anything else in a file is refused.
TRUSTED_SKOPS_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]


@dataclass(frozen=True)
class Manifest:
    """What an artifact holds and how it was made."""

    name: str
    version: str
    created_at: str
    files: Mapping[str, Mapping[str, Any]]
    libraries: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at,
            "libraries": dict(self.libraries),
            "files": {name: dict(entry) for name, entry in self.files.items()},
        }


@dataclass(frozen=True)
class ServingArtifact:
    """What a server needs, read and verified: the ONNX bytes, the schema and the card."""

    path: Path
    manifest: Manifest
    schema: ModelSchema
    card: Mapping[str, Any]
    onnx_model: bytes

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_version(onnx_model: bytes, schema: ModelSchema) -> str:
    """A version that changes exactly when the model or its schema changes."""
    schema_bytes = json.dumps(schema.to_dict(), sort_keys=True).encode()
    return digest(onnx_model + schema_bytes)[:12]


def write_artifact(
    out_dir: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    libraries: Mapping[str, str],
) -> Manifest:
    """Write `files` and their manifest into `out_dir`, replacing it whole or not at all."""
    missing = [f for f in REQUIRED if f not in files]
    if missing:
        raise ArtifactError(f"refusing to write an artifact without {', '.join(missing)}")
    manifest = Manifest(
        name=name,
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        files={file: {"sha256": digest(data), "bytes": len(data)} for file, data in files.items()},
        libraries=dict(libraries),
    )
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for file, data in files.items():
            target = staging / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (staging / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
        staging.chmod(0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def read_file(path: Path, name: str, size: int | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of file `name` inside the artifact at `path`: a regular file reached without
    following a symbolic link, whose size (checked before reading) is `size` when given, else at
    most `limit`. Raises `ArtifactError` naming the file and the problem."""
    file = path / name
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts:
        raise ArtifactError(f"{file}: the name escapes the artifact")
    directory: int | None = None
    try:
        directory = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
        handle = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except FileNotFoundError:
        raise ArtifactError(f"{file}: missing from the artifact") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ArtifactError(
                f"{file}: a symbolic link; an artifact holds plain files only"
            ) from None
        raise ArtifactError(f"{file}: unreadable: {exc.strerror or exc}") from exc
    finally:
        if directory is not None:
            os.close(directory)
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode):
        os.close(handle)
        raise ArtifactError(f"{file}: not a regular file; an artifact holds plain files only")
    with os.fdopen(handle, "rb") as stream:
        if size is not None and info.st_size != size:
            problem = "truncated" if info.st_size < size else "longer than recorded"
            raise ArtifactError(
                f"{file}: {problem} ({info.st_size} bytes, the manifest says {size})"
            )
        if info.st_size > limit:
            raise ArtifactError(f"{file}: {info.st_size} bytes, more than the {limit} allowed")
        data = stream.read(info.st_size + 1)
    if len(data) != info.st_size:
        raise ArtifactError(f"{file}: changed while it was read")
    return data


def read_manifest(path: Path, sha256: str | None = None) -> Manifest:
    """The manifest of the artifact at `path`, checked for format and version (and, with
    `sha256`, against that digest of its bytes before anything in it is believed)."""
    file = path / MANIFEST
    try:
        data = read_file(path, MANIFEST, limit=MAX_MANIFEST_BYTES)
    except ArtifactError as exc:
        if not (path / MANIFEST).exists() and not (path / MANIFEST).is_symlink():
            raise ArtifactError(
                f"{file}: missing; train a model first (`ml-service train` or `make model`)"
            ) from None
        raise exc from None
    if sha256 is not None and digest(data) != sha256:
        raise ArtifactError(
            f"{file}: its SHA-256 is {digest(data)}, not the pinned {sha256} "
            "(ML_SERVICE_MODEL_SHA256)"
        )
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ArtifactError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ArtifactError(f"{file}: not an ml-service artifact manifest")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{file}: artifact format {raw.get('format_version')!r} was made by an incompatible "
            f"ml-service; this release reads format {FORMAT_VERSION}. Retrain the model."
        )
    try:
        files = raw["files"]
        for name, entry in files.items():
            if not isinstance(entry["sha256"], str) or not isinstance(entry["bytes"], int):
                raise TypeError(name)
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ArtifactError(f"{file}: file name {name!r} escapes the artifact")
        return Manifest(
            name=str(raw["name"]),
            version=str(raw["version"]),
            created_at=str(raw["created_at"]),
            files=files,
            libraries=dict(raw.get("libraries", {})),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{file}: malformed manifest ({exc!r} is wrong or missing)") from exc


def read_verified(path: Path, manifest: Manifest, name: str) -> bytes:
    """One file's bytes, only if they match the manifest; the bytes checked are the bytes used."""
    file = path / name
    entry = manifest.files.get(name)
    if entry is None:
        raise ArtifactError(f"{file}: not listed in {MANIFEST}; the artifact is incomplete")
    data = read_file(path, name, size=int(entry["bytes"]))
    if digest(data) != entry["sha256"]:
        raise ArtifactError(f"{file}: modified since training (SHA-256 does not match manifest)")
    return data


def verify(path: Path) -> Manifest:
    """Check every file the manifest lists; return the manifest."""
    manifest = read_manifest(path)
    for name in manifest.files:
        read_verified(path, manifest, name)
    return manifest


def load_serving(path: Path, sha256: str | None = None) -> ServingArtifact:
    """Read and verify what a server needs (the manifest against `sha256` when pinned).
    Imports nothing from scikit-learn."""
    manifest = read_manifest(path, sha256)
    for name in REQUIRED:
        if name not in manifest.files:
            raise ArtifactError(f"{path / name}: missing from {MANIFEST}; retrain the model")
    onnx_model = read_verified(path, manifest, ONNX_FILE)
    schema = ModelSchema.from_dict(_json(path, manifest, SCHEMA_FILE))
    card = _json(path, manifest, CARD_JSON)
    return ServingArtifact(path, manifest, schema, card, onnx_model)


def _json(path: Path, manifest: Manifest, name: str) -> dict[str, Any]:
    data = read_verified(path, manifest, name)
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ArtifactError(f"{path / name}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ArtifactError(f"{path / name}: expected a JSON object")
    return value


def load_pipeline(path: Path) -> Any:
    """The scikit-learn pipeline, verified, with only the trusted types allowed to load."""
    import sklearn
    import skops.io

    manifest = read_manifest(path)
    made_with = manifest.libraries.get("scikit-learn")
    if made_with != sklearn.__version__:
        raise ArtifactError(
            f"{path / SKOPS_FILE}: made with scikit-learn {made_with}, but "
            f"{sklearn.__version__} is installed; retrain or install {made_with}"
        )
    data = read_verified(path, manifest, SKOPS_FILE)
    untrusted = set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_SKOPS_TYPES)
    if untrusted:
        raise ArtifactError(
            f"{path / SKOPS_FILE}: holds types outside the trusted list: {sorted(untrusted)}"
        )
    return skops.io.loads(data, trusted=TRUSTED_SKOPS_TYPES)


def export_onnx(pipeline: Any, n_features: int, classifier: bool = False) -> bytes:
    """The fitted pipeline as ONNX: one float32 input `input` [N, F] (scikit-learn's trees
    compare in float32 too); a regressor's first output is the prediction, a classifier's are
    `label` (int64 class index [N]) and `probabilities` (float [N, K], class-index order)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    from ml_service.model import converters

    converters.register()
    graph = to_onnx(
        pipeline,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))],
        target_opset=dict(ONNX_OPSETS),
        options={"zipmap": False} if classifier else None,
    )
    data: bytes = graph.SerializeToString()
    return data


def export_skops(pipeline: Any) -> bytes:
    import skops.io

    data: bytes = skops.io.dumps(pipeline)
    return data
