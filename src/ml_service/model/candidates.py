"""The models training chooses from, and the preprocessing each needs inside its pipeline.

Every pipeline takes the row matrix as the service builds it (categories as their index, missing
as NaN) and does all the rest itself, so that it converts to one ONNX graph with one input:

- categorical columns: one-hot over the schema's categories (a missing value, where the
  feature is nullable, is a category of its own), unknown codes encoded as all zeros;
- numeric columns: missing values filled with the training median, except for histogram
  gradient boosting, which learns where missing values go; scaled for the linear models.

Families: a regularised linear model (ridge / logistic regression), gradient boosting, histogram
gradient boosting and extra trees, each with a few settings. On large data (more than
`SMALL_DATA_ROWS` training rows) only the linear model and histogram gradient boosting are
tried: the exact boosting and the forest grow slow and, for the forest, large.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_service.errors import TrainingError
from ml_service.model.schema import REGRESSION, ModelSchema, Task

SMALL_DATA_ROWS = 10_000
LINEAR = "linear"
GRADIENT_BOOSTING = "gradient_boosting"
HIST_GRADIENT_BOOSTING = "hist_gradient_boosting"
EXTRA_TREES = "extra_trees"
MISSING_CODE = -1.0

# Settings tried per family and task (a little tuning; every setting on the same folds).
_BOOSTING: tuple[Mapping[str, Any], ...] = (
    {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3},
    {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "max_depth": 3,
        "subsample": 0.8,
        "max_features": 0.5,
    },
)
_HISTOGRAM: tuple[Mapping[str, Any], ...] = (
    {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20},
    {
        "max_iter": 300,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 5,
        "max_features": 0.5,
    },
)
GRIDS: Mapping[tuple[Task, str], tuple[Mapping[str, Any], ...]] = {
    ("regression", LINEAR): ({"alpha": 0.1}, {"alpha": 1.0}, {"alpha": 10.0}),
    ("classification", LINEAR): ({"C": 0.1}, {"C": 1.0}, {"C": 10.0}),
    ("regression", GRADIENT_BOOSTING): _BOOSTING,
    ("classification", GRADIENT_BOOSTING): _BOOSTING,
    ("regression", HIST_GRADIENT_BOOSTING): _HISTOGRAM,
    ("classification", HIST_GRADIENT_BOOSTING): _HISTOGRAM,
    ("regression", EXTRA_TREES): (
        {"n_estimators": 100, "min_samples_leaf": 2, "max_features": 0.7},
        {"n_estimators": 100, "min_samples_leaf": 5, "max_features": 1.0},
    ),
    ("classification", EXTRA_TREES): (
        {"n_estimators": 100, "min_samples_leaf": 2, "max_features": "sqrt"},
        {"n_estimators": 100, "min_samples_leaf": 5, "max_features": 0.7},
    ),
}


@dataclass(frozen=True)
class Candidate:
    """One family at one setting."""

    family: str
    params: tuple[tuple[str, Any], ...]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def label(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.family} ({settings})"

    def algorithm(self, task: Task) -> str:
        """The scikit-learn estimator's name, e.g. `HistGradientBoostingRegressor`."""
        return str(_estimator_class(task, self.family).__name__)

    def build(self, schema: ModelSchema, seed: int) -> Any:
        """The unfitted pipeline for `schema`'s row matrix."""
        from sklearn.pipeline import Pipeline

        estimator_class = _estimator_class(schema.task, self.family)
        params = self.hyperparameters
        if self.family != LINEAR or schema.task != REGRESSION:
            params["random_state"] = seed
        if self.family == HIST_GRADIENT_BOOSTING:
            params["early_stopping"] = False
        if self.family == LINEAR and schema.task != REGRESSION:
            params["max_iter"] = 2000
        steps = [*preprocessing(schema, self.family), ("model", estimator_class(**params))]
        return Pipeline(steps)


FAMILIES = (LINEAR, GRADIENT_BOOSTING, HIST_GRADIENT_BOOSTING, EXTRA_TREES)


def candidates(
    task: Task, train_rows: int, only: Sequence[str] | None = None
) -> tuple[Candidate, ...]:
    """Every (family, setting) to cross-validate for a task and training-split size; `only`
    names the families to try (all of them, on data of any size)."""
    if only is not None:
        unknown = sorted(set(only) - set(FAMILIES))
        if unknown or not only:
            raise TrainingError(
                f"unknown model family {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(FAMILIES)}"
            )
        families = [f for f in FAMILIES if f in only]
    elif train_rows > SMALL_DATA_ROWS:
        families = [LINEAR, HIST_GRADIENT_BOOSTING]
    else:
        families = list(FAMILIES)
    return tuple(
        Candidate(family, tuple(settings.items()))
        for family in families
        for settings in GRIDS[(task, family)]
    )


def _estimator_class(task: Task, family: str) -> Any:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    regression = task == REGRESSION
    return {
        LINEAR: Ridge if regression else LogisticRegression,
        GRADIENT_BOOSTING: GradientBoostingRegressor if regression else GradientBoostingClassifier,
        HIST_GRADIENT_BOOSTING: HistGradientBoostingRegressor
        if regression
        else HistGradientBoostingClassifier,
        EXTRA_TREES: ExtraTreesRegressor if regression else ExtraTreesClassifier,
    }[family]


def preprocessing(schema: ModelSchema, family: str) -> list[tuple[str, Any]]:
    """The pipeline steps before the estimator (none for trees on complete numeric columns)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [j for j, f in enumerate(schema.features) if not f.categorical]
    categorical = [j for j, f in enumerate(schema.features) if f.categorical]
    numeric_steps: list[tuple[str, Any]] = []
    nullable = any(schema.features[j].nullable for j in numeric)
    if nullable and family != HIST_GRADIENT_BOOSTING:
        numeric_steps.append(("impute", SimpleImputer(strategy="median")))
    if family == LINEAR:
        numeric_steps.append(("scale", StandardScaler()))
    if not categorical:
        return numeric_steps
    parts: list[tuple[str, Any, list[int]]] = []
    if numeric:
        parts.append(
            ("numeric", Pipeline(numeric_steps) if numeric_steps else "passthrough", numeric)
        )
    codes = []
    for j in categorical:
        feature = schema.features[j]
        known = np.arange(len(feature.categories or ()), dtype=np.float64)
        codes.append(np.concatenate([[MISSING_CODE], known]) if feature.nullable else known)
    onehot = OneHotEncoder(categories=codes, handle_unknown="ignore", sparse_output=False)
    categorical_steps: list[tuple[str, Any]] = [("onehot", onehot)]
    if any(schema.features[j].nullable for j in categorical):
        fill = SimpleImputer(strategy="constant", fill_value=MISSING_CODE)
        categorical_steps.insert(0, ("impute", fill))
    parts.append(("categorical", Pipeline(categorical_steps), categorical))
    return [("prepare", ColumnTransformer(parts, sparse_threshold=0.0))]
