"""The registry: every model version this worker serves, keyed by (name, version).

A request resolves its model here once (`Registry.resolve`), then holds that `LoadedModel`
until it is answered: a reload installs a new `Snapshot` (one assignment, so a request sees the
old set or the new one, never a mix) and the versions it no longer lists are freed when their
last request finishes. What to serve is a `Plan` (which versions, which is each name's
default, what failed and why, what was unloaded); `ml_service.repository.reload` keeps every
worker's registry on the same plan.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import logging
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np

from ml_service.config import Settings
from ml_service.errors import ArtifactError, Conflict, NotFound, NotReady
from ml_service.model.artifact import ServingArtifact, load_serving
from ml_service.model.checks import Checker
from ml_service.model.schema import FloatArray, ModelSchema, Refused
from ml_service.observability.inputs import InputWatch
from ml_service.observability.metrics import ModelTally
from ml_service.predictor import Prediction, Predictor
from ml_service.repository import layout

log = logging.getLogger("ml_service.repository")

# Larger batches run in a thread so the event loop keeps serving other requests meanwhile.
THREAD_ROWS = 2000


class State(enum.StrEnum):
    """A model version's state, as the repository extension names them."""

    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    LOADING = "LOADING"
    UNLOADING = "UNLOADING"


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the repository index."""

    name: str
    version: str
    state: State
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "state": self.state.value,
            "reason": self.reason,
        }


class LoadedModel:
    """One served model version: its verified artifact, checks, predictor and watchers."""

    __slots__ = (
        "__weakref__",
        "artifact",
        "checker",
        "class_keys",
        "classes",
        "headers",
        "name",
        "path",
        "predictor",
        "schema",
        "tally",
        "version",
        "watch",
    )

    def __init__(self, artifact: ServingArtifact, settings: Settings) -> None:
        self.artifact = artifact
        self.name = artifact.name
        self.version = artifact.version
        self.path = artifact.path
        self.schema: ModelSchema = artifact.schema
        # Every prediction's answer names the version that gave it.
        self.headers = [
            (b"x-model-name", self.name.encode()),
            (b"x-model-version", self.version.encode()),
        ]
        self.checker = Checker(artifact.schema)
        self.predictor = Predictor(artifact)
        classes = artifact.schema.target.classes
        self.classes: list[Any] | None = None if classes is None else list(classes)
        # JSON object keys for the probabilities of each class.
        self.class_keys = None if classes is None else [str(c) for c in classes]
        self.watch = InputWatch(
            artifact.schema,
            settings.drift_window,
            settings.drift_threshold,
            (self.name, self.version),
        )
        self.tally = ModelTally(artifact.schema, self.name, self.version)
        try:
            self.predictor.predict(warmup_rows(artifact.schema))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(
                f"{artifact.path / 'model.onnx'}: the warm-up prediction failed ({exc})"
            ) from exc

    @classmethod
    def load(cls, path: Path, settings: Settings) -> LoadedModel:
        """Verify and load the artifact at `path` (against the configured pin, if any), and
        make one prediction (`ArtifactError`)."""
        return cls(load_serving(path, settings.model_sha256), settings)

    async def predict(self, rows: FloatArray) -> Prediction:
        """The model's answer for checked rows (large batches off the event loop)."""
        if len(rows) >= THREAD_ROWS:
            return await anyio.to_thread.run_sync(self.predictor.predict, rows)
        return self.predictor.predict(rows)

    def observe(self, dialect: str, rows: FloatArray, prediction: Prediction) -> None:
        """Count what was asked and answered (metrics, input watch)."""
        self.tally.prediction(dialect, prediction)
        self.watch.observe(rows)

    def flush(self) -> None:
        """Write this version's counts to the shared metrics."""
        self.tally.flush()
        self.watch.publish()


def warmup_rows(schema: ModelSchema) -> FloatArray:
    """One realistic row: the schema's first example, else each feature's lowest value."""
    example = schema.examples[0] if schema.examples else {}
    row = []
    for feature in schema.features:
        try:
            row.append(feature.encode(example.get(feature.name)))
        except Refused:
            row.append(feature.train_min if feature.train_min is not None else 0.0)
    return np.asarray([row], dtype=np.float64)


@dataclass(frozen=True)
class Plan:
    """What every worker serves: for each model, its versions (paths) and default version;
    versions that failed and why; models unloaded on request. `generation` orders plans."""

    generation: int = 0
    models: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    failed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    unloaded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "models": {n: dict(v) for n, v in self.models.items()},
            "defaults": dict(self.defaults),
            "failed": {n: dict(v) for n, v in self.failed.items()},
            "unloaded": list(self.unloaded),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            generation=int(data["generation"]),
            models={str(n): dict(v) for n, v in data["models"].items()},
            defaults=dict(data["defaults"]),
            failed={str(n): dict(v) for n, v in data["failed"].items()},
            unloaded=tuple(data["unloaded"]),
        )

    def paths(self) -> set[tuple[str, str, str]]:
        return {(n, v, p) for n, versions in self.models.items() for v, p in versions.items()}


@dataclass(frozen=True)
class Snapshot:
    """The models one worker serves right now (replaced whole on every change).

    `models[name]` maps each version, and `None` for the default one, to its `LoadedModel`.
    """

    models: Mapping[str, Mapping[str | None, LoadedModel]] = field(default_factory=dict)
    default_model: str | None = None
    plan: Plan = field(default_factory=Plan)
    loading: bool = True

    def loaded(self) -> list[LoadedModel]:
        return [m for versions in self.models.values() for k, m in versions.items() if k]


class Registry:
    """This worker's served models and the rules for finding one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.snapshot = Snapshot()
        # Versions replaced or unloaded that requests in flight may still hold.
        self.retired: list[weakref.ref[LoadedModel]] = []
        self.busy: dict[tuple[str, str], State] = {}

    # --- the request path

    def resolve(self, name: str | None, version: str | None = None) -> LoadedModel:
        """The model a request names (its default version unless `version`), or 404 / 503."""
        snapshot = self.snapshot
        versions = snapshot.models.get(snapshot.default_model if name is None else name)  # type: ignore[arg-type]
        if versions is not None:
            found = versions.get(version)
            if found is not None:
                return found
        raise self._missing(snapshot, name, version)

    def _missing(self, snapshot: Snapshot, name: str | None, version: str | None) -> Exception:
        if snapshot.loading:
            return NotReady("model not loaded: the models are still loading")
        if name is None:
            served = sorted(snapshot.models)
            if not served:
                return NotReady(f"model not loaded: {self.reasons() or 'no model found'}")
            return NotFound(
                f"several models are served ({', '.join(served)}) and none is the default; "
                "set ML_SERVICE_DEFAULT_MODEL or use /v1/models/{name}:predict"
            )
        versions = snapshot.models.get(name)
        if versions is None:
            failed = snapshot.plan.failed.get(name)
            if failed and name not in snapshot.plan.models:
                reasons = "; ".join(failed.values())
                return NotReady(f"model {name!r} is unavailable: {reasons}")
            listed = ", ".join(repr(n) for n in sorted(snapshot.models)) or "none"
            return NotFound(f"no model named {name!r}; this server serves {listed}")
        known = ", ".join(repr(v) for v in sorted(k for k in versions if k))
        return NotFound(f"model {name!r} has no version {version!r}; it serves {known}")

    # --- what is served

    @property
    def ready(self) -> bool:
        """Loading is over and at least one model serves."""
        snapshot = self.snapshot
        return not snapshot.loading and bool(snapshot.models)

    def reasons(self) -> str:
        """Why versions are unavailable, in one line."""
        plan = self.snapshot.plan
        return "; ".join(reason for f in plan.failed.values() for reason in f.values())

    def index(self) -> list[Entry]:
        """Every model version known to this worker, with its state and reason."""
        snapshot = self.snapshot
        plan = snapshot.plan
        entries: dict[tuple[str, str], Entry] = {}
        for name, versions in plan.models.items():
            for version in versions:
                entries[(name, version)] = Entry(name, version, State.READY)
        for name, failed in plan.failed.items():
            for version, reason in failed.items():
                entries[(name, version)] = Entry(name, version, State.UNAVAILABLE, reason)
        for name in plan.unloaded:
            entries.setdefault((name, ""), Entry(name, "", State.UNAVAILABLE, "unloaded"))
        for key, state in self.busy.items():
            entries[key] = Entry(key[0], key[1], state)
        return [entries[key] for key in sorted(entries)]

    def knows(self, name: str) -> bool:
        plan = self.snapshot.plan
        return name in plan.models or name in plan.failed or name in plan.unloaded

    # --- changing what is served

    def scan(self, base: Plan, names: Iterable[str] | None = None, retry: bool = True) -> Plan:
        """`base` with `names` (default: every model not unloaded) as they are on disk now.

        New versions are listed to be loaded and vanished ones dropped; with `retry` false, a
        version that already failed stays failed instead of being tried again. Raises
        `NotFound` when a name asked for does not exist on disk.
        """
        settings = self.settings
        if settings.model_repository is None:
            found = layout.scan_artifact(settings.artifact_dir)
            on_disk = {found.name: [found]}
        else:
            wanted = None if names is None else list(names)
            on_disk = layout.scan_repository(settings.model_repository, wanted)
        if names is not None:
            for name in names:
                if not on_disk.get(name):
                    raise NotFound(f"no model named {name!r} in the model repository")
            chosen = set(names)
        else:
            chosen = set(on_disk) - set(base.unloaded)
        models = {n: dict(v) for n, v in base.models.items() if n not in chosen}
        failed = {n: dict(v) for n, v in base.failed.items() if n not in chosen}
        for name in chosen:
            known = base.failed.get(name, {})
            for found in on_disk.get(name, []):
                if not retry and found.version in known:
                    failed.setdefault(name, {})[found.version] = known[found.version]
                elif found.problem is not None:
                    failed.setdefault(name, {})[found.version] = found.problem
                else:
                    models.setdefault(name, {})[found.version] = str(found.path)
        return Plan(
            generation=base.generation,
            models=models,
            defaults=base.defaults,
            failed=failed,
            unloaded=tuple(n for n in base.unloaded if n not in chosen),
        )

    def without(self, base: Plan, name: str) -> Plan:
        """`base` with model `name` unloaded."""
        if name not in base.models and name not in base.failed:
            raise NotFound(f"no model named {name!r} is loaded")
        return Plan(
            generation=base.generation,
            models={n: v for n, v in base.models.items() if n != name},
            defaults={n: v for n, v in base.defaults.items() if n != name},
            failed={n: v for n, v in base.failed.items() if n != name},
            unloaded=(*base.unloaded, name),
        )

    def prepare(self, plan: Plan) -> tuple[Plan, dict[tuple[str, str], LoadedModel]]:
        """Load every version `plan` lists that this worker does not serve yet (blocking: call
        it off the event loop). Versions that fail move to the plan's failures; each model's
        default becomes its pinned or newest working version."""
        current = {(m.name, m.version, str(m.path)): m for m in self.snapshot.loaded()}
        loaded: dict[tuple[str, str], LoadedModel] = {}
        models: dict[str, dict[str, str]] = {}
        failed = {n: dict(v) for n, v in plan.failed.items()}
        for name, versions in plan.models.items():
            for version, path in versions.items():
                model = current.get((name, version, path))
                if model is None:
                    self.busy[(name, version)] = State.LOADING
                    try:
                        model = LoadedModel.load(Path(path), self.settings)
                    except ArtifactError as exc:
                        failed.setdefault(name, {})[version] = exc.message
                        log.error(
                            "model %s version %s not loaded: %s",
                            name,
                            version,
                            exc.message,
                            extra={"event": "model_load_failed"},
                        )
                        continue
                    finally:
                        self.busy.pop((name, version), None)
                loaded[(name, version)] = model
                models.setdefault(name, {})[version] = path
        defaults = {
            name: self._default(name, list(versions), loaded) for name, versions in models.items()
        }
        prepared = Plan(plan.generation, models, defaults, failed, plan.unloaded)
        return prepared, loaded

    def _default(
        self, name: str, versions: list[str], loaded: Mapping[tuple[str, str], LoadedModel]
    ) -> str:
        pinned = self.settings.default_versions.get(name)
        if pinned is not None and pinned in versions:
            return pinned
        return max(versions, key=lambda v: (loaded[(name, v)].artifact.manifest.created_at, v))

    def install(self, plan: Plan, loaded: Mapping[tuple[str, str], LoadedModel]) -> None:
        """Serve exactly `plan` (whose versions are all in `loaded`), in one assignment."""
        models: dict[str, dict[str | None, LoadedModel]] = {}
        for name, versions in plan.models.items():
            entry: dict[str | None, LoadedModel] = {v: loaded[(name, v)] for v in versions}
            entry[None] = loaded[(name, plan.defaults[name])]
            models[name] = entry
        configured = self.settings.default_model
        if configured is not None:
            default_model = configured if configured in models else None
        else:
            default_model = next(iter(models)) if len(models) == 1 else None
        before = self.snapshot.loaded()
        self.snapshot = Snapshot(models, default_model, plan, loading=False)
        kept = {id(m) for m in self.snapshot.loaded()}
        for model in before:
            if id(model) not in kept:
                model.flush()
                model.tally.retire()
                self.retired.append(weakref.ref(model))
        for model in self.snapshot.loaded():
            if (model.name, model.version) not in {(m.name, m.version) for m in before}:
                log.info(
                    "model %s version %s ready",
                    model.name,
                    model.version,
                    extra={"event": "model_ready", "model": model.name, "version": model.version},
                )
        before.clear()
        self._give_back()

    def refused(self, plan: Plan, name: str) -> None:
        """409 when versions of `name` could not be loaded (the others serve on)."""
        failed = plan.failed.get(name)
        if not failed:
            return
        reasons = "; ".join(f"version {v!r}: {why}" for v, why in sorted(failed.items()))
        serving = plan.defaults.get(name)
        still = f"version {serving!r} serves" if serving else "no version of it serves"
        raise Conflict(f"model {name!r} has versions that cannot be loaded ({reasons}); {still}")

    def flush(self) -> None:
        """Write every version's counts; once the last request on a retired version is over,
        give its memory back."""
        for model in self.snapshot.loaded():
            model.flush()
        self._give_back()

    def _give_back(self) -> None:
        if self.retired:
            self.retired = [ref for ref in self.retired if ref() is not None]
            if not self.retired:
                release_memory()


def _trim() -> Any:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    function = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if function is not None:
        function.argtypes = [ctypes.c_size_t]
        function.restype = ctypes.c_int
    return function


_MALLOC_TRIM = _trim()


def release_memory() -> None:
    """Return freed heap pages to the system. A model version's buffers are freed when its last
    reference goes, but glibc keeps the pages for reuse, and the next version's differently
    sized buffers do not fit them: without this, every reload would add a few megabytes."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
