"""Training: a scikit-learn Pipeline fitted on the training split only, evaluated twice.

Repeated k-fold cross-validation on the training split measures how stable the model is; a
held-out split it never sees measures how good it is. Both are deterministic for a given data
file and `TrainSettings`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import RepeatedKFold, train_test_split
from sklearn.pipeline import Pipeline

from ml_service.errors import QualityGateFailed, TrainingError
from ml_service.model.data import Dataset
from ml_service.model.schema import Example, Feature, FloatArray, ModelSchema, Reference, Target

DEFAULT_FEATURES = ("CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT")
DEFAULT_TARGET = "MEDV"
# The default model reaches R² ≈ 0.82 and RMSE ≈ 3.6 on the held-out split; the gate leaves margin.
DEFAULT_MIN_R2 = 0.70
DEFAULT_MAX_RMSE = 5.0
REFERENCE_BINS = 10

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the fitted model; the same settings and data give the same model."""

    features: tuple[str, ...] = DEFAULT_FEATURES
    target: str = DEFAULT_TARGET
    test_size: float = 0.2
    seed: int = 42
    cv_folds: int = 5
    cv_repeats: int = 3
    n_estimators: int = 100
    learning_rate: float = 0.1
    max_depth: int = 3
    min_r2: float = DEFAULT_MIN_R2
    max_rmse: float = DEFAULT_MAX_RMSE

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "random_state": self.seed,
        }


@dataclass(frozen=True)
class Metrics:
    """Regression quality on one set of rows."""

    rmse: float
    mae: float
    r2: float

    @classmethod
    def of(cls, actual: FloatArray, predicted: FloatArray) -> Metrics:
        return cls(
            rmse=float(math.sqrt(mean_squared_error(actual, predicted))),
            mae=float(mean_absolute_error(actual, predicted)),
            r2=float(r2_score(actual, predicted)),
        )

    def as_dict(self) -> dict[str, float]:
        return {"rmse": self.rmse, "mae": self.mae, "r2": self.r2}


@dataclass(frozen=True)
class TrainingResult:
    """A fitted pipeline with its schema, its evaluation and the held-out rows it was judged on."""

    pipeline: Pipeline
    schema: ModelSchema
    settings: TrainSettings
    dataset: Dataset
    holdout: Metrics
    cv_folds: tuple[Metrics, ...]
    x_test: FloatArray
    y_test: FloatArray
    y_pred: FloatArray
    x_train: FloatArray = field(repr=False)

    def cv_summary(self) -> dict[str, float]:
        """Mean and standard deviation of each metric across the cross-validation folds."""
        summary: dict[str, float] = {}
        for name in ("rmse", "mae", "r2"):
            values = np.array([getattr(m, name) for m in self.cv_folds])
            summary[f"{name}_mean"] = float(values.mean())
            summary[f"{name}_std"] = float(values.std())
        return summary


def build_pipeline(settings: TrainSettings) -> Pipeline:
    """The unfitted model. Every preprocessing step belongs inside it, never in the server."""
    return Pipeline([("regressor", GradientBoostingRegressor(**settings.hyperparameters()))])


def train(
    dataset: Dataset,
    schema: ModelSchema,
    settings: TrainSettings,
    progress: Progress = lambda _: None,
) -> TrainingResult:
    """Split, cross-validate, fit on the training split and score on the held-out split."""
    if not 0.05 <= settings.test_size <= 0.5:
        raise TrainingError("test size must be between 0.05 and 0.5")
    indices = np.arange(len(dataset.y))
    train_idx, test_idx = train_test_split(
        indices, test_size=settings.test_size, random_state=settings.seed
    )
    x_train, y_train = dataset.x[train_idx], dataset.y[train_idx]
    x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]

    splitter = RepeatedKFold(
        n_splits=settings.cv_folds, n_repeats=settings.cv_repeats, random_state=settings.seed
    )
    total = settings.cv_folds * settings.cv_repeats
    folds: list[Metrics] = []
    for number, (fit_idx, val_idx) in enumerate(splitter.split(x_train), start=1):
        model = build_pipeline(settings).fit(x_train[fit_idx], y_train[fit_idx])
        folds.append(Metrics.of(y_train[val_idx], model.predict(x_train[val_idx])))
        progress(f"cross-validation {number}/{total}: RMSE {folds[-1].rmse:.3f}")

    progress(f"fitting on {len(train_idx)} training rows")
    pipeline = build_pipeline(settings).fit(x_train, y_train)
    y_pred = np.asarray(pipeline.predict(x_test), dtype=np.float64)
    holdout = Metrics.of(y_test, y_pred)
    progress(
        f"held-out ({len(test_idx)} rows): RMSE {holdout.rmse:.3f}, "
        f"MAE {holdout.mae:.3f}, R² {holdout.r2:.3f}"
    )
    return TrainingResult(
        pipeline=pipeline,
        schema=finish_schema(schema, dataset, x_train, test_idx),
        settings=settings,
        dataset=dataset,
        holdout=holdout,
        cv_folds=tuple(folds),
        x_test=x_test,
        y_test=y_test,
        y_pred=y_pred,
        x_train=x_train,
    )


def check_quality(result: TrainingResult) -> None:
    """Refuse a model worse than the gate in its settings."""
    failures = []
    if result.holdout.r2 < result.settings.min_r2:
        failures.append(f"R² {result.holdout.r2:.3f} < {result.settings.min_r2}")
    if result.holdout.rmse > result.settings.max_rmse:
        failures.append(f"RMSE {result.holdout.rmse:.3f} > {result.settings.max_rmse}")
    if failures:
        raise QualityGateFailed("quality gate failed on the held-out split: " + "; ".join(failures))


def infer_schema(name: str, dataset: Dataset) -> ModelSchema:
    """A schema for a CSV that came without one: ranges widened from what the data shows.

    A 0/1 column accepts 0 and 1; any other column accepts the observed range widened by its
    width on each side, so plausible new values still get a prediction.
    """
    features = []
    for j, column in enumerate(dataset.features):
        values = dataset.x[:, j]
        low, high = float(values.min()), float(values.max())
        if set(np.unique(values).tolist()) <= {0.0, 1.0}:
            features.append(Feature(name=column, min=0, max=1, allowed=(0.0, 1.0)))
        else:
            width = (high - low) or max(abs(high), 1.0)
            features.append(Feature(name=column, min=low - width, max=high + width))
    return ModelSchema(name=name, features=tuple(features), target=Target(dataset.target))


def finish_schema(
    schema: ModelSchema, dataset: Dataset, x_train: FloatArray, test_idx: np.ndarray[Any, Any]
) -> ModelSchema:
    """Add what training saw: per-feature range and distribution, and a few real example rows."""
    if schema.names != dataset.features:
        raise TrainingError(
            f"the schema lists {', '.join(schema.names)} but training uses "
            f"{', '.join(dataset.features)}"
        )
    features = []
    for j, feature in enumerate(schema.features):
        column = x_train[:, j]
        outside = ~feature.accepts(column)
        if outside.any():
            raise TrainingError(
                f"training data has {feature.name} = {column[outside][0]:g}, outside the "
                f"schema's accepted range ({feature.describe_range()})"
            )
        features.append(
            replace(
                feature,
                train_min=float(column.min()),
                train_max=float(column.max()),
                reference=reference_distribution(column),
            )
        )
    order = test_idx[np.argsort(dataset.y[test_idx], kind="stable")]
    picks = [0, int(order[0]), int(order[len(order) // 2]), int(order[-1])]
    examples: tuple[Example, ...] = tuple(
        {
            **{name: float(dataset.x[i, j]) for j, name in enumerate(dataset.features)},
            dataset.target: float(dataset.y[i]),
        }
        for i in dict.fromkeys(picks)
    )
    return replace(schema, features=tuple(features), examples=examples)


def reference_distribution(column: FloatArray) -> Reference:
    """Decile bins of the training values and the share of training rows in each."""
    edges = np.unique(np.quantile(column, np.linspace(0, 1, REFERENCE_BINS + 1)))
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, column, side="right"), minlength=len(inner) + 1)
    fractions = counts / counts.sum()
    return Reference(tuple(float(e) for e in inner), tuple(float(f) for f in fractions))
