"""How good a model is, per task, against the baseline that knows only the target, and the gate.

Regression: RMSE, MAE, R²; the baseline predicts the training mean. Classification: accuracy,
balanced accuracy, log loss, and ROC AUC (two classes) or macro F1 (more); the baseline predicts
the most frequent class with the training class shares as probabilities. Candidates are compared
on RMSE (regression) or log loss (classification): both judge every row's answer, the latter
also how sure it was.

The default quality gate means something for any target: R² at least 0.5 and RMSE below the
baseline's; or balanced accuracy at least a third of the way from chance (1/K) to perfect and log
loss below the baseline's. A schema file's `quality_gate` and the `--min-*` / `--max-*` flags
replace the default threshold of the same metric; the baseline comparison always applies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml_service.errors import TrainingError
from ml_service.model.schema import REGRESSION, FloatArray, Task

REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})
DEFAULT_MIN_R2 = 0.5
LABELS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "log_loss": "log loss",
    "roc_auc": "ROC AUC",
    "macro_f1": "macro F1",
}
REGRESSION_GATES = frozenset({"min_r2", "max_rmse", "max_mae"})
# Gate thresholds by key (`--min-r2` on the command line, `min_r2` in a schema file).
GATE_KEYS = (
    "min_r2",
    "max_rmse",
    "max_mae",
    "min_accuracy",
    "min_balanced_accuracy",
    "max_log_loss",
    "min_roc_auc",
    "min_macro_f1",
)


def metric_names(task: Task, classes: int = 0) -> tuple[str, ...]:
    if task == REGRESSION:
        return REGRESSION_METRICS
    last = "roc_auc" if classes == 2 else "macro_f1"
    return ("accuracy", "balanced_accuracy", "log_loss", last)


def primary(task: Task) -> str:
    """The metric candidates are ranked by (lower is better for both)."""
    return "rmse" if task == REGRESSION else "log_loss"


def regression(actual: FloatArray, predicted: FloatArray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(math.sqrt(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)),
    }


def classification(actual: npt.NDArray[Any], probabilities: FloatArray) -> dict[str, float]:
    """Metrics from class indices and the (N, K) probabilities; labels are the argmax, as the
    model's own `predict` (and the ONNX graph's `label`) chooses them."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    found = {
        "accuracy": float(accuracy_score(actual, predicted)),
        "balanced_accuracy": float(_balanced_accuracy(actual, predicted, balanced_accuracy_score)),
        "log_loss": float(log_loss(actual, probabilities, labels=list(range(classes)))),
    }
    if classes == 2:
        both = len(np.unique(actual)) == 2
        found["roc_auc"] = float(roc_auc_score(actual, probabilities[:, 1])) if both else math.nan
    else:
        labels = list(range(classes))
        found["macro_f1"] = float(
            f1_score(actual, predicted, labels=labels, average="macro", zero_division=0)
        )
    return found


def _balanced_accuracy(actual: Any, predicted: Any, score: Any) -> float:
    import warnings

    with warnings.catch_warnings():
        # A class predicted but absent from a small fold is a fact of that fold, not an error.
        warnings.simplefilter("ignore", UserWarning)
        return float(score(actual, predicted))


def confusion(
    actual: npt.NDArray[Any], predicted: npt.NDArray[Any], classes: int
) -> list[list[int]]:
    """Counts: rows are the actual class, columns the predicted one, both in class-index order."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (actual.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix.tolist()


def baseline_prediction(
    task: Task, y_train: npt.NDArray[Any], rows: int, classes: int
) -> FloatArray:
    """What the baseline answers for `rows` rows: the mean, or the class shares."""
    if task == REGRESSION:
        return np.full(rows, float(np.mean(y_train)))
    shares = np.bincount(y_train.astype(np.int64), minlength=classes) / len(y_train)
    return np.tile(shares, (rows, 1))


def score(task: Task, actual: npt.NDArray[Any], answer: FloatArray) -> dict[str, float]:
    """The task's metrics for predictions (regression) or probabilities (classification)."""
    return regression(actual, answer) if task == REGRESSION else classification(actual, answer)


def better(metric: str, a: float, b: float) -> bool:
    """Is `a` a better value of `metric` than `b`?"""
    return a < b if metric in LOWER_IS_BETTER else a > b


@dataclass(frozen=True, slots=True)
class Check:
    """One condition of the quality gate, and how the model did."""

    metric: str
    bound: str  # "min" or "max"
    threshold: float
    value: float
    source: str

    @property
    def passed(self) -> bool:
        if math.isnan(self.value):
            return False
        if self.source == "baseline":
            return better(self.metric, self.value, self.threshold)
        return self.value >= self.threshold if self.bound == "min" else self.value <= self.threshold

    @property
    def text(self) -> str:
        name = LABELS[self.metric]
        if self.source == "baseline":
            sign = "<" if self.metric in LOWER_IS_BETTER else ">"
            return f"{name} {sign} baseline's {self.threshold:.3f}"
        sign = "≥" if self.bound == "min" else "≤"
        return f"{name} {sign} {_number(self.threshold)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "bound": self.bound,
            "threshold": self.threshold,
            "value": self.value,
            "source": self.source,
            "passed": self.passed,
            "text": self.text,
        }


def _number(value: float) -> str:
    return f"{value:g}"


def chance_balanced_accuracy(classes: int) -> float:
    """Default gate: a third of the way from chance (1/K) to a perfect balanced accuracy."""
    chance = 1.0 / classes
    return round(chance + (1.0 - chance) / 3.0, 3)


def gate_checks(
    task: Task,
    holdout: Mapping[str, float],
    baseline: Mapping[str, float],
    classes: int,
    schema_gate: Mapping[str, float],
    flags: Mapping[str, float],
) -> list[Check]:
    """The gate's conditions: defaults, replaced by the schema file's, replaced by the flags."""
    wrong = sorted(k for k in flags if (k in REGRESSION_GATES) != (task == REGRESSION))
    if wrong:
        flag = wrong[0].replace("_", "-")
        raise TrainingError(f"--{flag} does not apply to a {task} model")
    thresholds: dict[str, tuple[float, str]] = {}
    if task == REGRESSION:
        thresholds["min_r2"] = (DEFAULT_MIN_R2, "default")
        compared = "rmse"
    else:
        thresholds["min_balanced_accuracy"] = (chance_balanced_accuracy(classes), "default")
        compared = "log_loss"
    for key, value in schema_gate.items():
        if key.split("_", 1)[1] in holdout:
            thresholds[key] = (value, "schema file")
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if key.split("_", 1)[1] not in holdout:
            raise TrainingError(f"{flag} does not apply to a model with {classes} classes")
        thresholds[key] = (value, flag)
    checks = []
    for key, (value, source) in thresholds.items():
        bound, metric = key.split("_", 1)
        checks.append(Check(metric, bound, value, holdout.get(metric, math.nan), source))
    checks.append(Check(compared, "max", baseline[compared], holdout[compared], "baseline"))
    return checks
