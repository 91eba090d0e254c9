"""What one worker process holds: settings, the loaded model and its readiness."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ml_service.config import Settings
from ml_service.errors import ArtifactError, NotFound, NotReady
from ml_service.model.artifact import ServingArtifact, load_serving
from ml_service.model.schema import FloatArray
from ml_service.observability.inputs import InputWatch
from ml_service.observability.metrics import Tally
from ml_service.predictor import Predictor

log = logging.getLogger("ml_service")


@dataclass
class Loaded:
    """A verified artifact, its predictor and the watch over its inputs (range, drift)."""

    artifact: ServingArtifact
    predictor: Predictor
    watch: InputWatch | None = None


@dataclass
class ServiceState:
    """Readiness is true only after the model loaded and made one prediction."""

    settings: Settings
    loaded: Loaded | None = None
    load_error: str | None = None
    draining: bool = False
    tally: Tally = field(default_factory=Tally)
    _warm: bool = field(default=False, repr=False)

    def load(self) -> None:
        """Load and warm the model; on failure keep the reason and stay not ready."""
        try:
            artifact = load_serving(self.settings.model_dir)
            predictor = Predictor(artifact)
            predictor.predict(warmup_rows(artifact))
        except ArtifactError as exc:
            self.load_error = exc.message
            log.error("model not loaded: %s", exc.message, extra={"event": "model_load_failed"})
            return
        watch = InputWatch(
            artifact.schema, self.settings.drift_window, self.settings.drift_threshold
        )
        self.loaded = Loaded(artifact, predictor, watch)
        self._warm = True
        log.info(
            "model %s version %s ready",
            artifact.name,
            artifact.version,
            extra={"event": "model_ready", "model": artifact.name, "version": artifact.version},
        )

    @property
    def ready(self) -> bool:
        return self._warm and self.loaded is not None and not self.draining

    def require(self) -> Loaded:
        """The loaded model, or 503 saying why there is none."""
        if self.loaded is None:
            reason = self.load_error or "the model is still loading"
            raise NotReady(f"model not loaded: {reason}")
        return self.loaded

    def require_ready(self) -> Loaded:
        if self.draining:
            raise NotReady("the server is shutting down")
        return self.require()


def warmup_rows(artifact: ServingArtifact) -> FloatArray:
    """One realistic row: the schema's first example, else each feature's lower bound."""
    schema = artifact.schema
    if schema.examples:
        row = [schema.examples[0][name] for name in schema.names]
    else:
        row = [f.train_min if f.train_min is not None else 0.0 for f in schema.features]
    return np.asarray([row], dtype=np.float64)


def check_model(artifact: ServingArtifact, name: str, version: str | None = None) -> None:
    """404 unless `name` (and `version`, when given) name the served model."""
    if name != artifact.name:
        raise NotFound(f"no model named {name!r}; this server serves {artifact.name!r}")
    if version is not None and version != artifact.version:
        raise NotFound(f"model {name!r} has no version {version!r}; it serves {artifact.version!r}")
