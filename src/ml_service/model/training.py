"""Training: candidates compared on the same repeated cross-validation, the best one refitted.

The rows are split once into a training split and a held-out split (stratified by class for a
classifier). Every candidate (`ml_service.model.candidates`) is cross-validated on the same
repeated k-fold splits of the training split; the best setting of each family is refitted on the
whole training split, and the family with the best cross-validated score (RMSE, or log loss)
is the model. The held-out split, which no choice has seen, measures it, next to the baseline
and the other families. Everything is deterministic for a given data file and `TrainSettings`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ml_service.errors import QualityGateFailed, TrainingError
from ml_service.model import metrics
from ml_service.model.candidates import Candidate, candidates
from ml_service.model.columns import Dataset, Plan
from ml_service.model.schema import (
    REGRESSION,
    Example,
    FloatArray,
    ModelSchema,
    Reference,
    Task,
)

REFERENCE_BINS = 10
EXAMPLES_PER_CLASS = 1
MAX_EXAMPLES = 6

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the fitted model; the same settings and data give the same model.

    `features` None means the schema file's features, else every usable column; `target` None
    means the schema file's target; `task` None means inferred from the target. The gate fields
    replace the default (or schema file's) threshold of their metric when set.
    """

    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    target: str | None = None
    task: Task | None = None
    test_size: float = 0.2
    seed: int = 42
    cv_folds: int = 5
    cv_repeats: int = 3
    families: tuple[str, ...] | None = None
    min_r2: float | None = None
    max_rmse: float | None = None
    max_mae: float | None = None
    min_accuracy: float | None = None
    min_balanced_accuracy: float | None = None
    max_log_loss: float | None = None
    min_roc_auc: float | None = None
    min_macro_f1: float | None = None

    def gate_flags(self) -> dict[str, float]:
        """The gate thresholds set explicitly, by metric key (`min_r2`, ...)."""
        found = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.startswith(("min_", "max_")) and value is not None:
                found[item.name] = float(value)
        return found


@dataclass(frozen=True)
class Evaluation:
    """One candidate's metrics in every cross-validation fold."""

    candidate: Candidate
    folds: tuple[Mapping[str, float], ...]
    seconds: float = 0.0

    def values(self, metric: str) -> FloatArray:
        return np.array([fold[metric] for fold in self.folds], dtype=np.float64)

    def mean(self, metric: str) -> float:
        return float(np.nanmean(self.values(metric)))

    def std(self, metric: str) -> float:
        return float(np.nanstd(self.values(metric)))

    def summary(self) -> dict[str, dict[str, float]]:
        return {m: {"mean": self.mean(m), "std": self.std(m)} for m in self.folds[0]}


@dataclass(frozen=True)
class FamilyResult:
    """A family's settings as tried, its best one, and that one refitted and held out."""

    best: Evaluation
    tried: tuple[Evaluation, ...]
    holdout: Mapping[str, float]


@dataclass(frozen=True)
class TrainingResult:
    """The chosen fitted pipeline with its schema, its evaluation and the rows it was judged on.

    `y_pred` holds the held-out predictions (regression) or predicted class indices
    (classification, whose probabilities are `probabilities`).
    """

    pipeline: Any
    schema: ModelSchema
    settings: TrainSettings
    dataset: Dataset
    plan: Plan
    chosen: Candidate
    families: tuple[FamilyResult, ...]
    baseline_cv: Evaluation
    baseline: Mapping[str, float]
    holdout: Mapping[str, float]
    checks: tuple[metrics.Check, ...]
    x_test: FloatArray
    y_test: npt.NDArray[Any]
    y_pred: npt.NDArray[Any]
    x_train: FloatArray = field(repr=False)
    y_train: npt.NDArray[Any] = field(repr=False)
    probabilities: FloatArray | None = None
    warnings: tuple[str, ...] = ()
    # Positions in `dataset` of the held-out rows (`x_test`), in the same order.
    test_index: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.empty(0, dtype=np.int64), repr=False
    )

    @property
    def task(self) -> Task:
        return self.schema.task

    @property
    def chosen_family(self) -> FamilyResult:
        return next(f for f in self.families if f.best.candidate == self.chosen)

    @property
    def cv_folds(self) -> tuple[Mapping[str, float], ...]:
        return self.chosen_family.best.folds

    def cv_summary(self) -> dict[str, float]:
        """The chosen model's mean and standard deviation of each metric across the folds."""
        best = self.chosen_family.best
        summary: dict[str, float] = {}
        for name in best.folds[0]:
            summary[f"{name}_mean"] = best.mean(name)
            summary[f"{name}_std"] = best.std(name)
        return summary


def train(  # noqa: PLR0915 - one sequence of steps, told in the module docstring
    dataset: Dataset,
    settings: TrainSettings,
    plan: Plan,
    schema_gate: Mapping[str, float] | None = None,
    progress: Progress = lambda _: None,
) -> TrainingResult:
    """Split, cross-validate every candidate, refit the best of each family, score held out."""
    from sklearn.model_selection import (
        RepeatedKFold,
        RepeatedStratifiedKFold,
        train_test_split,
    )
    from threadpoolctl import threadpool_limits

    if not 0.05 <= settings.test_size <= 0.5:
        raise TrainingError("test size must be between 0.05 and 0.5")
    if not 2 <= settings.cv_folds <= 20 or not 1 <= settings.cv_repeats <= 10:
        raise TrainingError("cross-validation needs 2 to 20 folds and 1 to 10 repeats")
    schema = dataset.schema
    task = schema.task
    classes = len(schema.target.classes or ())
    regression = task == REGRESSION
    indices = np.arange(len(dataset.y))
    train_idx, test_idx = train_test_split(
        indices,
        test_size=settings.test_size,
        random_state=settings.seed,
        stratify=None if regression else dataset.y,
    )
    x_train, y_train = dataset.x[train_idx], dataset.y[train_idx]
    x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]
    splitter_class = RepeatedKFold if regression else RepeatedStratifiedKFold
    splitter = splitter_class(
        n_splits=settings.cv_folds, n_repeats=settings.cv_repeats, random_state=settings.seed
    )
    folds = list(splitter.split(x_train, y_train))
    noted: dict[str, None] = {}

    def fit(candidate: Candidate, x: FloatArray, y: npt.NDArray[Any]) -> Any:
        # One thread: the same result on any machine, and no thread contention on small data.
        with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = candidate.build(schema, settings.seed).fit(x, y)
        for warning in caught:
            noted[f"{candidate.label}: {str(warning.message).splitlines()[0]}"] = None
        return model

    def answer(model: Any, x: FloatArray) -> FloatArray:
        if regression:
            return np.asarray(model.predict(x), dtype=np.float64)
        found = np.zeros((len(x), classes))
        found[:, model.classes_] = model.predict_proba(x)
        return found

    primary = metrics.primary(task)
    name = metrics.LABELS[primary]
    baseline_folds = tuple(
        metrics.score(
            task,
            y_train[val],
            metrics.baseline_prediction(task, y_train[fit_idx], len(val), classes),
        )
        for fit_idx, val in folds
    )
    baseline_cv = Evaluation(Candidate("baseline", ()), baseline_folds)
    progress(
        f"{len(train_idx)} training rows, {len(test_idx)} held out; {settings.cv_repeats}x "
        f"repeated {settings.cv_folds}-fold cross-validation; baseline {name} "
        f"{baseline_cv.mean(primary):.3f}"
    )
    evaluations: list[Evaluation] = []
    for candidate in candidates(task, len(train_idx), settings.families):
        started = time.perf_counter()
        scores = []
        for fit_idx, val in folds:
            model = fit(candidate, x_train[fit_idx], y_train[fit_idx])
            scores.append(metrics.score(task, y_train[val], answer(model, x_train[val])))
        evaluation = Evaluation(candidate, tuple(scores), time.perf_counter() - started)
        evaluations.append(evaluation)
        progress(
            f"{candidate.label}: CV {name} {evaluation.mean(primary):.3f} ± "
            f"{evaluation.std(primary):.3f} ({evaluation.seconds:.1f} s)"
        )

    families: list[FamilyResult] = []
    fitted: dict[Candidate, tuple[Any, FloatArray]] = {}
    for family in dict.fromkeys(e.candidate.family for e in evaluations):
        tried = tuple(e for e in evaluations if e.candidate.family == family)
        best = min(tried, key=lambda e: e.mean(primary))
        model = fit(best.candidate, x_train, y_train)
        held = answer(model, x_test)
        fitted[best.candidate] = (model, held)
        families.append(FamilyResult(best, tried, metrics.score(task, y_test, held)))
    chosen = min(families, key=lambda f: f.best.mean(primary)).best.candidate
    pipeline, held = fitted[chosen]
    holdout = metrics.score(task, y_test, held)
    baseline = metrics.score(
        task, y_test, metrics.baseline_prediction(task, y_train, len(test_idx), classes)
    )
    progress(
        f"chosen {chosen.label}; held-out: "
        + ", ".join(f"{metrics.LABELS[k]} {v:.3f}" for k, v in holdout.items())
        + f" (baseline {name} {baseline[primary]:.3f})"
    )
    checks = metrics.gate_checks(
        task, holdout, baseline, classes, schema_gate or {}, settings.gate_flags()
    )
    return TrainingResult(
        pipeline=pipeline,
        schema=finish_schema(schema, dataset, x_train, test_idx),
        settings=settings,
        dataset=dataset,
        plan=plan,
        chosen=chosen,
        families=tuple(families),
        baseline_cv=baseline_cv,
        baseline=baseline,
        holdout=holdout,
        checks=tuple(checks),
        x_test=x_test,
        y_test=y_test,
        y_pred=held if regression else held.argmax(axis=1),
        x_train=x_train,
        y_train=y_train,
        probabilities=None if regression else held,
        warnings=tuple(plan.warnings) + tuple(noted),
        test_index=np.asarray(test_idx, dtype=np.int64),
    )


def check_quality(result: TrainingResult) -> None:
    """Refuse a model that fails any condition of its gate."""
    failures = []
    for check in result.checks:
        if check.passed:
            continue
        label = metrics.LABELS[check.metric]
        if check.source == "baseline":
            failures.append(
                f"{label} {check.value:.3f} is no better than the baseline's {check.threshold:.3f}"
            )
        else:
            sign = "<" if check.bound == "min" else ">"
            failures.append(
                f"{label} {check.value:.3f} {sign} {check.threshold:g} ({check.source})"
            )
    if failures:
        raise QualityGateFailed("quality gate failed on the held-out split: " + "; ".join(failures))


def finish_schema(
    schema: ModelSchema, dataset: Dataset, x_train: FloatArray, test_idx: npt.NDArray[Any]
) -> ModelSchema:
    """Add what training saw: each feature's range or category shares and missing share in the
    training split, and a few real held-out rows as examples in request form."""
    features = []
    for j, feature in enumerate(schema.features):
        column = x_train[:, j]
        present = column[~np.isnan(column)]
        if feature.categorical or present.size == 0:
            features.append(
                replace(feature, reference=reference_distribution(column, feature.categories))
            )
            continue
        features.append(
            replace(
                feature,
                train_min=float(present.min()),
                train_max=float(present.max()),
                reference=reference_distribution(column),
            )
        )
    finished = replace(schema, features=tuple(features))
    if schema.task == REGRESSION:
        order = test_idx[np.argsort(dataset.y[test_idx], kind="stable")]
        picks = [0, int(order[0]), int(order[len(order) // 2]), int(order[-1])]
        target = schema.target
        values: Any = dataset.y
    else:
        picks = [0]
        for k in range(len(schema.target.classes or ())):
            picks += [int(i) for i in test_idx[dataset.y[test_idx] == k][:EXAMPLES_PER_CLASS]]
        target = schema.target
        values = [target.classes[int(k)] for k in dataset.y]  # type: ignore[index]
    examples = tuple(
        _example(finished, dataset.x[i], values[i])
        for i in list(dict.fromkeys(picks))[:MAX_EXAMPLES]
    )
    return replace(finished, examples=examples)


def _example(schema: ModelSchema, row: FloatArray, target: Any) -> Example:
    """A row of the matrix in request form: numbers, category text, None for missing."""
    example: Example = {}
    for feature, value in zip(schema.features, row.tolist(), strict=True):
        if math.isnan(value):
            example[feature.name] = None
        elif feature.categories is not None:
            example[feature.name] = feature.categories[int(value)]
        else:
            example[feature.name] = float(value)
    example[schema.target.name] = float(target) if schema.task == REGRESSION else target
    return example


def reference_distribution(
    column: FloatArray, categories: tuple[str, ...] | None = None
) -> Reference | None:
    """Training distribution for drift: decile bins of a numeric column's values, or one bin per
    category (edges halfway between codes); shares are of the present values, `missing` the
    share of missing ones."""
    missing = np.isnan(column)
    present = column[~missing]
    share = float(missing.mean()) if column.size else 0.0
    if present.size == 0:
        return None
    if categories is not None:
        inner = np.arange(len(categories) - 1, dtype=np.float64) + 0.5
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, REFERENCE_BINS + 1)))
        inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1)
    fractions = counts / counts.sum()
    return Reference(
        tuple(float(e) for e in inner), tuple(float(f) for f in fractions), missing=share
    )
