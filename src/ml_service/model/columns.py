"""What a table's columns are for: the schema file, the features, their kinds, the task.

The rules, each stated once (docs/training.md tells them to users):

- Features: the schema file's, else every column but the target, less row identifiers (an
  unnamed column; text with a different value in every row; distinct whole numbers that run
  without gaps, or in a column named like an id), empty and
  constant columns, and text with a different value in most rows; each left-out column is
  reported with its reason. `--features` and `--exclude` override.
- Kinds: a column the schema file marks (`"kind"` or `"categories"`) is what it says; otherwise
  numeric when (nearly) every cell is a number, categorical when it holds text. A mostly numeric
  column with a few text cells is numeric, and those cells are refused by line.
- Task: text labels, or whole numbers with at most `CLASS_LEVELS` distinct values, make a
  classification; any other numbers a regression. `--task` overrides.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml_service.errors import TrainingError
from ml_service.model.data import (
    CellProblem,
    Table,
    as_numbers,
    as_text,
    describe_problems,
    is_unnamed,
    to_matrix,
)
from ml_service.model.metrics import GATE_KEYS
from ml_service.model.schema import (
    CATEGORICAL,
    CLASSIFICATION,
    NUMERIC,
    REGRESSION,
    Feature,
    FeatureKind,
    FloatArray,
    Label,
    ModelSchema,
    Target,
    Task,
    _fmt,
)

_ID_NAME = re.compile(r"(^|[_ ])(id|key|index|row|number)$|^(id|key|index|row)([_ ]|$)", re.I)
MIN_ROWS = 20
CLASS_LEVELS = 10
NUMERIC_SHARE = 0.9
MOSTLY_DISTINCT = 0.5
MOSTLY_DISTINCT_MIN = 20
MOSTLY_MISSING = 0.5


@dataclass(frozen=True)
class SchemaFile:
    """A hand-written `*.schema.json`: what it says about features (raw entries by name, in file
    order), the target, the model's texts, and an optional `quality_gate`."""

    path: Path
    raw: dict[str, Any]
    features: dict[str, dict[str, Any]]
    target: dict[str, Any] | None
    gate: dict[str, float]

    def entry(self, name: str) -> dict[str, Any]:
        return self.features.get(name, {"name": name})


def load_schema_file(schema_path: Path | None, data_path: Path) -> SchemaFile | None:
    """The given schema file, else `<data stem>.schema.json` beside the data file, else None."""
    path = schema_path or data_path.with_name(f"{data_path.stem}.schema.json")
    if schema_path is None and not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise TypeError("expected a JSON object")
        entries = raw.get("features", [])
        features = {str(e["name"]): dict(e) for e in entries}
        for entry in features.values():
            Feature.from_dict(entry)
        target = raw.get("target")
        if isinstance(target, str):
            target = {"name": target}
        if target is not None:
            Target.from_dict(target)
        gate = {str(k): float(v) for k, v in raw.get("quality_gate", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{path}: not a usable schema file ({exc})") from exc
    unknown = sorted(set(gate) - set(GATE_KEYS))
    if unknown:
        raise TrainingError(
            f"{path}: quality_gate has {', '.join(unknown)}; known: {', '.join(GATE_KEYS)}"
        )
    return SchemaFile(path, raw, features, target, gate)


@dataclass(frozen=True, slots=True)
class Excluded:
    """A column left out of the default features, and why."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    """The columns training uses: the target, the features in order, and what was left out."""

    target: str
    features: tuple[str, ...]
    excluded: tuple[Excluded, ...] = ()
    warnings: tuple[str, ...] = ()


def plan_columns(
    table: Table,
    target: str | None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    schema_file: SchemaFile | None = None,
) -> Plan:
    """Choose the target and features (see the module docstring); unknown names are refused."""
    columns = table.columns
    if target is None:
        target = schema_file.target["name"] if schema_file and schema_file.target else None
    if target is None:
        raise TrainingError(
            f"{table.path}: name the target column with --target; the columns are "
            f"{', '.join(columns)}"
        )
    _require(table, [target, *(features or ()), *exclude])
    chosen_by_name = features is not None or bool(schema_file and schema_file.features)
    if features is not None:
        names = list(dict.fromkeys(features))
    elif schema_file and schema_file.features:
        _require(table, list(schema_file.features), "the schema file lists")
        names = list(schema_file.features)
    else:
        names = [c for c in columns if c != target]
    if target in names:
        raise TrainingError(f"{target} is the target; it cannot also be a feature")
    names = [n for n in names if n not in exclude]
    excluded = [Excluded(n, "left out with --exclude") for n in exclude if n != target]
    warnings: list[str] = []
    kept: list[str] = []
    for name in names:
        reason = _not_a_feature(table.frame[name], name, schema_file)
        if reason is None:
            kept.append(name)
        elif not chosen_by_name:
            excluded.append(Excluded(name, reason))
        elif reason.startswith("empty"):
            raise TrainingError(f"{table.path}: column {name} is {reason}")
        else:
            warnings.append(f"{name}: {reason}; kept because it was chosen by name")
            kept.append(name)
    if not kept:
        raise TrainingError(f"{table.path}: no usable feature columns besides the target {target}")
    return Plan(target, tuple(kept), tuple(excluded), tuple(warnings))


def _require(table: Table, names: Sequence[str], who: str = "asked for") -> None:
    missing = [n for n in dict.fromkeys(names) if n not in table.frame.columns]
    if missing:
        raise TrainingError(
            f"{table.path}: no column(s) {', '.join(missing)} ({who}); the columns are "
            f"{', '.join(table.columns)}"
        )


def _not_a_feature(column: pd.Series[Any], name: str, schema_file: SchemaFile | None) -> str | None:
    """Why a column makes no default feature, or None when it does."""
    present = column.dropna()
    if is_unnamed(name):
        return "unnamed column (a saved row index)"
    if present.empty:
        return "empty: no value in any row"
    distinct = present.nunique()
    if distinct == 1:
        return f"constant: {_cell(present.iloc[0])} in every row"
    kind = column_kind(column, schema_file.entry(name) if schema_file else {"name": name})
    if distinct == len(column) and (kind == CATEGORICAL or _counts_rows(present, name)):
        return "row identifier: a different value in every row"
    if kind == CATEGORICAL and distinct >= max(MOSTLY_DISTINCT_MIN, MOSTLY_DISTINCT * len(present)):
        return f"text with a different value in most rows ({distinct} values in {len(present)})"
    return None


def _counts_rows(column: pd.Series[Any], name: str) -> bool:
    """Distinct whole numbers that number the rows: a run without gaps, or named like an id."""
    numbers = as_numbers(column)
    if np.isnan(numbers).any() or not bool(np.all(np.mod(numbers, 1) == 0)):
        return False
    run = float(numbers.max() - numbers.min()) == len(numbers) - 1
    return run or bool(_ID_NAME.search(name))


def _cell(value: object) -> str:
    if isinstance(value, str):
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        return repr(value) if math.isnan(number) else _fmt(float(number))
    return _fmt(float(value)) if isinstance(value, float | int) else repr(value)


def column_kind(column: pd.Series[Any], entry: dict[str, Any]) -> FeatureKind:
    """A column's kind: as the schema file's entry says, else from its cells."""
    if "kind" in entry or "categories" in entry:
        return Feature.from_dict(entry).kind
    if pd.api.types.is_numeric_dtype(column):
        return NUMERIC
    present = column.dropna()
    if present.empty:
        return NUMERIC
    share = float(np.count_nonzero(~np.isnan(as_numbers(present)))) / len(present)
    return NUMERIC if share >= NUMERIC_SHARE else CATEGORICAL


def infer_task(
    table: Table, target: str, task: Task | None
) -> tuple[Task, tuple[Label, ...] | None]:
    """The task and, for a classifier, its labels in class-index order (rows without a target
    are ignored here; training leaves them out)."""
    column = table.frame[target].dropna()
    if column.empty:
        raise TrainingError(f"{table.path}: the target {target} has no value in any row")
    numbers = as_numbers(column)
    parsed = ~np.isnan(numbers)
    all_numbers = bool(parsed.all())
    whole = all_numbers and bool(np.all(np.mod(numbers, 1) == 0))
    if task is None:
        if all_numbers:
            few = np.unique(numbers).size <= CLASS_LEVELS
            task = CLASSIFICATION if whole and few else REGRESSION
        elif parsed.mean() >= NUMERIC_SHARE:
            task = REGRESSION
        else:
            task = CLASSIFICATION
    if np.unique(as_text(column).to_numpy(dtype=str)).size == 1:
        raise TrainingError(
            f"{table.path}: the target {target} is {_cell(column.iloc[0])} in every row; "
            "there is nothing to learn"
        )
    if task == REGRESSION:
        if not all_numbers:
            bad = column[~parsed]
            first = table.where(int(bad.index[0]))
            raise TrainingError(
                f"{first}: the target {target} holds {bad.iloc[0]!r}, not a number "
                f"({len(bad)} such cells); a regression needs numbers (or use --task "
                "classification if they are labels)"
            )
        return REGRESSION, None
    if whole:
        return CLASSIFICATION, tuple(int(v) for v in np.unique(numbers).tolist())
    return CLASSIFICATION, tuple(sorted(set(as_text(column).tolist())))


def _sorted_categories(values: Sequence[str]) -> tuple[str, ...]:
    """Category order: numerically for codes that are all whole numbers, else as text."""
    distinct = sorted(set(values))
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    if distinct and bool(numbers.notna().all()):
        return tuple(sorted(distinct, key=float))
    return tuple(distinct)


def training_schema(
    table: Table,
    plan: Plan,
    task: Task,
    classes: tuple[Label, ...] | None,
    schema_file: SchemaFile | None = None,
    name: str | None = None,
) -> ModelSchema:
    """The schema the model is trained to: each feature's kind, categories, nullability and
    accepted range (the schema file's where it gives one, else inferred from the rows that have
    a target), and the target with its classes."""
    rows = table.frame[table.frame[plan.target].notna()]
    features = []
    for column_name in plan.features:
        entry = schema_file.entry(column_name) if schema_file else {"name": column_name}
        declared = Feature.from_dict(entry)
        column = rows[column_name]
        nullable = declared.nullable or bool(column.isna().any())
        kind = column_kind(column, entry)
        if kind == CATEGORICAL:
            categories = declared.categories or _sorted_categories(
                as_text(column).dropna().tolist()
            )
            features.append(
                Feature(
                    name=column_name,
                    kind=CATEGORICAL,
                    description=declared.description,
                    unit=declared.unit,
                    categories=categories,
                    nullable=nullable,
                )
            )
        elif {"min", "max", "allowed"} & set(entry):
            features.append(replace(declared, kind=NUMERIC, nullable=nullable))
        else:
            features.append(_inferred_numeric(declared, as_numbers(column), nullable))
    raw = schema_file.raw if schema_file else {}
    target_entry = (
        schema_file.target
        if schema_file and schema_file.target and schema_file.target["name"] == plan.target
        else {"name": plan.target}
    )
    declared_target = Target.from_dict(target_entry)
    target = Target(
        name=plan.target,
        description=declared_target.description,
        unit=declared_target.unit,
        classes=classes,
    )
    return ModelSchema(
        name=name or str(raw.get("name") or table.path.stem),
        features=tuple(features),
        target=target,
        description=str(raw.get("description") or _description(task, plan.target, table)),
        intended_use=str(raw.get("intended_use", "")),
        caveats=tuple(raw.get("caveats", ())),
    )


def _description(task: Task, target: str, table: Table) -> str:
    what = "Predicts" if task == REGRESSION else "Classifies"
    return f"{what} {target} from the other columns of {table.path.name}."


def _inferred_numeric(declared: Feature, values: FloatArray, nullable: bool) -> Feature:
    """A 0/1 column accepts 0 and 1; any other the observed range widened by its width on each
    side, so plausible new values still get a prediction."""
    present = values[~np.isnan(values)]
    low, high = float(present.min()), float(present.max())
    base = replace(declared, kind=NUMERIC, nullable=nullable)
    if set(np.unique(present).tolist()) <= {0.0, 1.0}:
        return replace(base, min=0.0, max=1.0, allowed=(0.0, 1.0))
    width = (high - low) or max(abs(high), 1.0)
    # Six significant digits: the bounds are a generous guess, and read better short.
    bottom, top = min(float(f"{low - width:.6g}"), low), max(float(f"{high + width:.6g}"), high)
    return replace(base, min=bottom, max=top)


@dataclass(frozen=True)
class Dataset:
    """The rows training uses: the row matrix `x`, the target `y` (values for a regression,
    class indices for a classification), and where each row came from."""

    table: Table
    schema: ModelSchema
    x: FloatArray
    y: npt.NDArray[Any]
    records: npt.NDArray[np.int64] = field(repr=False)
    dropped_missing_target: int = 0

    @property
    def features(self) -> tuple[str, ...]:
        return self.schema.names

    @property
    def target(self) -> str:
        return self.schema.target.name


def to_dataset(
    table: Table, schema: ModelSchema, folds: int = 5, test_size: float = 0.2
) -> Dataset:
    """The row matrix and target of every row that has a target; any refused cell, too few rows,
    or a class too rare to be in every fold is a `TrainingError` naming what to fix."""
    target = schema.target
    frame = table.frame
    has_target = frame[target.name].notna().to_numpy()
    rows = frame[has_target]
    if len(rows) < MIN_ROWS:
        raise TrainingError(
            f"{table.path}: {len(rows)} data rows with a {target.name}; at least {MIN_ROWS} are "
            "needed to train"
        )
    conversion = to_matrix(rows, schema.features)
    problems: list[CellProblem] = list(conversion.problems)
    if target.classes is None:
        y: npt.NDArray[Any] = as_numbers(rows[target.name])
        for i in np.flatnonzero(~np.isfinite(y)).tolist():
            problems.append(
                CellProblem(
                    int(rows.index[i]),
                    target.name,
                    rows[target.name].iat[i],
                    "must be a finite number (the target of a regression)",
                )
            )
    else:
        column = rows[target.name]
        if all(isinstance(c, int) for c in target.classes):
            codes = pd.Index(list(target.classes)).get_indexer(as_numbers(column))
        else:
            labels = pd.Index([str(c) for c in target.classes], dtype=object)
            codes = labels.get_indexer(as_text(column).astype(object))
        y = codes.astype(np.int64)
        for i in np.flatnonzero(y < 0).tolist():
            problems.append(
                CellProblem(int(rows.index[i]), target.name, column.iat[i], "not a known class")
            )
    if problems:
        problems.sort(key=lambda p: p.row)
        raise TrainingError(
            f"{table.path}: {len(problems)} cell(s) the model cannot take:\n"
            + describe_problems(table, problems)
            + _hint(problems, schema)
        )
    if target.classes is not None:
        _check_classes(table, target, y, folds, test_size)
    return Dataset(
        table=table,
        schema=schema,
        x=conversion.matrix,
        y=y,
        records=rows.index.to_numpy(dtype=np.int64),
        dropped_missing_target=int(np.count_nonzero(~has_target)),
    )


def _hint(problems: Sequence[CellProblem], schema: ModelSchema) -> str:
    numeric = {f.name for f in schema.features if not f.categorical}
    text_in_numbers = sorted(
        {p.column for p in problems if p.column in numeric and isinstance(p.value, str)}
    )
    if not text_in_numbers:
        return ""
    return (
        f"\n{', '.join(text_in_numbers)} is mostly numbers: fix those cells, or mark it "
        'categorical in the schema file ({"name": ..., "kind": "categorical"})'
    )


def _check_classes(
    table: Table, target: Target, y: npt.NDArray[Any], folds: int, test_size: float
) -> None:
    """Every class needs a row in each cross-validation fold and in the held-out split."""
    classes = target.classes or ()
    needed = math.ceil(folds / (1 - test_size)) + 1
    counts = np.bincount(y, minlength=len(classes))
    rare = [(classes[k], int(n)) for k, n in enumerate(counts.tolist()) if n < needed]
    if rare:
        shown = ", ".join(f"{label!r} ({n} rows)" for label, n in rare[:5])
        more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
        raise TrainingError(
            f"{table.path}: {len(rare)} of {len(classes)} classes of {target.name} have "
            f"fewer than {needed} rows, too few for {folds} cross-validation folds and a held-out "
            f"split: {shown}{more}. Merge rare classes, drop their rows, or check that "
            f"{target.name} is really a label."
        )
