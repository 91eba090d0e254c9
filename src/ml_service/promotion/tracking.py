"""Tracked training: an `ml-service train` run recorded in MLflow, its artifact registered.

With a tracking URI (`--tracking-uri`, else `MLFLOW_TRACKING_URI`) each run records, in the
experiment named after the model (or `--experiment`):

- parameters: task, target, features, the families tried, seed, test size, folds and repeats,
  the gate flags given, the data file;
- metrics: the chosen model's held-out metrics (`holdout_<metric>`), the baseline's
  (`baseline_<metric>`) and its cross-validated mean and spread (`cv_<metric>_mean`, `_std`);
  every candidate setting tried is a nested child run with its own parameters and CV metrics
  (and, for the best setting of each family, its held-out metrics);
- tags: the data file's SHA-256, the artifact's version and its manifest's SHA-256;
- artifacts: the whole artifact directory under `model/`, the card and report at the top.

The artifact is then registered as a new version of the registered model of the same name,
its source `<run artifacts>/model` (plain files, no MLflow flavour), tagged with the artifact's
version string and manifest SHA-256, which `ml_service.promotion.registry` checks on download.

MLflow is the optional `tracking` extra: imported only here, only when asked for, with its
telemetry off unless the environment says otherwise (a service does not phone home).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ml_service.errors import TrackingError
from ml_service.model import artifact, metrics

if TYPE_CHECKING:  # the registry side is used by servers, which never import training
    from ml_service.model.training import TrainingResult

TRACKING_ENV = "MLFLOW_TRACKING_URI"
TELEMETRY_ENV = "MLFLOW_DISABLE_TELEMETRY"
PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
VERSION_TAG = "ml_service.artifact_version"
MANIFEST_TAG = "ml_service.manifest_sha256"
DATA_TAG = "ml_service.data_sha256"
MODEL_PATH = "model"
# MLflow refuses longer parameter values; a wide table's feature list is cut to fit.
MAX_PARAM = 6000
BATCH = 100


@dataclass(frozen=True)
class Recorded:
    """Where a training run went: its run, and the registered model version."""

    uri: str
    run_id: str
    experiment: str
    model: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {
            "tracking_uri": shown(self.uri),
            "run_id": self.run_id,
            "experiment": self.experiment,
            "registered_model": self.model,
            "registered_version": self.version,
        }


def tracking_uri(given: str | None = None) -> str | None:
    """The tracking URI asked for: `given`, else `MLFLOW_TRACKING_URI`, else None (off)."""
    return given or os.environ.get(TRACKING_ENV) or None


def shown(uri: str) -> str:
    """A URI fit for logs and messages: any user name and password removed."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def client(uri: str) -> Any:
    """An `MlflowClient` for tracking and registry at `uri` (MLflow imported now)."""
    os.environ.setdefault(TELEMETRY_ENV, "true")
    os.environ.setdefault(PROGRESS_ENV, "false")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError(
            "MLflow is not installed: install the tracking extra "
            "(pip install 'ml-service[tracking]') to use a tracking URI or models:/ references"
        ) from None
    with errors(uri):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check(uri: str) -> None:
    """Fail now, before a long training run, when the store at `uri` cannot be used."""
    mlflow = client(uri)
    with errors(uri):
        mlflow.search_experiments(max_results=1)


@contextmanager
def errors(uri: str, what: str = "") -> Iterator[None]:
    """MLflow's and the store's failures as `TrackingError`, naming the store (no secrets)."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:  # MlflowException, SQLAlchemy, OSError, HTTP: all "cannot use it"
        text = str(getattr(exc, "message", None) or exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        where = f"MLflow at {shown(uri)}"
        raise TrackingError(f"{where}: {what + ': ' if what else ''}{message}") from exc


def record_training(
    uri: str,
    data_path: Path,
    artifact_dir: Path,
    manifest: artifact.Manifest,
    result: TrainingResult,
    experiment: str | None = None,
    alias: str | None = None,
) -> Recorded:
    """Record the run that made the artifact at `artifact_dir` and register the artifact."""
    from ml_service.model.report import REPORT_FILE

    artifact.verify(artifact_dir)  # what is registered is what training wrote, file for file
    mlflow = client(uri)
    name = experiment or manifest.name
    with errors(uri, f"recording the run in experiment {name!r}"):
        experiment_id = _experiment(mlflow, uri, name)
        run = mlflow.create_run(experiment_id, run_name=f"{manifest.name} {manifest.version}")
        run_id = run.info.run_id
        try:
            _log(
                mlflow,
                run_id,
                _params(data_path, result),
                _metrics(result),
                _tags(manifest, result),
            )
            _candidates(mlflow, experiment_id, run_id, result)
            mlflow.log_artifacts(run_id, str(artifact_dir), MODEL_PATH)
            for file in (artifact.CARD_JSON, artifact.CARD_MD, REPORT_FILE):
                if (artifact_dir / file).is_file():
                    mlflow.log_artifact(run_id, str(artifact_dir / file))
        except BaseException:
            mlflow.set_terminated(run_id, "FAILED")
            raise
        mlflow.set_terminated(run_id, "FINISHED")
    with errors(uri, f"registering model {manifest.name!r}"):
        version = register(mlflow, manifest, artifact_dir, run.info.artifact_uri, run_id)
        if alias:
            mlflow.set_registered_model_alias(manifest.name, alias, version)
    return Recorded(uri, run_id, name, manifest.name, version)


def register(
    mlflow: Any, manifest: artifact.Manifest, artifact_dir: Path, artifact_uri: str, run_id: str
) -> str:
    """A new version of registered model `manifest.name` whose source is the run's `model/`."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        mlflow.get_registered_model(manifest.name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        mlflow.create_registered_model(
            manifest.name, description=f"ml-service model {manifest.name}"
        )
    sha256 = artifact.digest((artifact_dir / artifact.MANIFEST).read_bytes())
    created = mlflow.create_model_version(
        manifest.name,
        source=f"{artifact_uri.rstrip('/')}/{MODEL_PATH}",
        run_id=run_id,
        tags={VERSION_TAG: manifest.version, MANIFEST_TAG: sha256},
        description=f"ml-service artifact version {manifest.version}",
    )
    return str(created.version)


def _experiment(mlflow: Any, uri: str, name: str) -> str:
    """The experiment's id, creating it; a new one on a local SQLite store keeps its artifacts
    in `mlartifacts/` beside the database rather than in the working directory."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
        location = (database.parent / "mlartifacts").as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def _log(
    mlflow: Any,
    run_id: str,
    params: Mapping[str, str],
    values: Mapping[str, float],
    tags: Mapping[str, str],
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = _now_ms()
    items = list(params.items())
    metric_items = list(values.items())
    tag_items = list(tags.items())
    for start in range(0, max(len(items), len(metric_items), len(tag_items)), BATCH):
        mlflow.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metric_items[start : start + BATCH]],
            params=[Param(k, v) for k, v in items[start : start + BATCH]],
            tags=[RunTag(k, v) for k, v in tag_items[start : start + BATCH]],
        )


def _params(data_path: Path, result: TrainingResult) -> dict[str, str]:
    settings = result.settings
    schema = result.schema
    families = dict.fromkeys(f.best.candidate.family for f in result.families)
    params = {
        "task": result.task,
        "target": schema.target.name,
        "features": ",".join(schema.names),
        "feature_count": str(len(schema.names)),
        "candidates": ",".join(families),
        "chosen": result.chosen.family,
        "seed": str(settings.seed),
        "test_size": str(settings.test_size),
        "cv_folds": str(settings.cv_folds),
        "cv_repeats": str(settings.cv_repeats),
        "data_file": data_path.name,
        **{f"gate_{key}": str(value) for key, value in settings.gate_flags().items()},
        **{f"chosen_{key}": str(value) for key, value in result.chosen.hyperparameters.items()},
    }
    return {key: _cut(value) for key, value in params.items()}


def _metrics(result: TrainingResult) -> dict[str, float]:
    found = {f"holdout_{k}": v for k, v in result.holdout.items()}
    found.update({f"baseline_{k}": v for k, v in result.baseline.items()})
    found.update({f"cv_{k}": v for k, v in result.cv_summary().items()})
    return found


def _tags(manifest: artifact.Manifest, result: TrainingResult) -> dict[str, str]:
    return {
        VERSION_TAG: manifest.version,
        DATA_TAG: result.dataset.table.sha256,
        "ml_service.model": manifest.name,
        "ml_service.release": manifest.libraries.get("ml-service", ""),
    }


def _candidates(mlflow: Any, experiment_id: str, parent: str, result: TrainingResult) -> None:
    """One nested child run per candidate setting tried, with its CV metrics."""
    primary = metrics.primary(result.task)
    for family in result.families:
        for evaluation in family.tried:
            candidate = evaluation.candidate
            child = mlflow.create_run(
                experiment_id,
                run_name=candidate.label,
                tags={"mlflow.parentRunId": parent},
            ).info.run_id
            values = {
                f"cv_{name}_{stat}": value
                for name, summary in evaluation.summary().items()
                for stat, value in summary.items()
            }
            values["seconds"] = round(evaluation.seconds, 3)
            best = evaluation is family.best
            if best:
                values.update({f"holdout_{k}": v for k, v in family.holdout.items()})
            params = {"family": candidate.family}
            params.update({k: _cut(str(v)) for k, v in candidate.hyperparameters.items()})
            _log(mlflow, child, params, values, {})
            for key, value in {
                "best_of_family": str(best).lower(),
                "chosen": str(best and candidate == result.chosen).lower(),
                "ranked_by": f"cv_{primary}_mean",
            }.items():
                mlflow.set_tag(child, key, value)
            mlflow.set_terminated(child, "FINISHED")


def _cut(value: str) -> str:
    return value if len(value) <= MAX_PARAM else value[: MAX_PARAM - 3] + "..."


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
