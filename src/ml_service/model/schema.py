"""The feature schema a model carries in its artifact, and the value checks it implies.

The web layer never names a feature: it reads them from here, so a model trained on other
columns serves them instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ml_service.errors import Loc, Problem

FloatArray = npt.NDArray[np.float64]


FeatureKind = Literal["numeric", "categorical"]
Task = Literal["regression", "classification"]
NUMERIC: FeatureKind = "numeric"
CATEGORICAL: FeatureKind = "categorical"
REGRESSION: Task = "regression"
CLASSIFICATION: Task = "classification"
Label = str | int
# Cells a data file means as missing (training, batch scoring and the page's CSV upload agree).
MISSING_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL")


class Refused(ValueError):
    """A value a feature does not accept; the message is the contract's detail text."""

    @property
    def message(self) -> str:
        return str(self.args[0])


_CODES: dict[int, tuple[Feature, dict[str, float]]] = {}


@dataclass(frozen=True, slots=True)
class Reference:
    """A feature's training distribution, for drift: bins and the share of rows in each.

    Numeric features: `edges` are the inner bin edges (deciles). Categorical features: one bin
    per category, in category order (`edges` are the midpoints between codes, so the same
    binning applies). `missing` is the share of missing values in training.
    """

    edges: tuple[float, ...]
    fractions: tuple[float, ...]
    missing: float = 0.0


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column: what it means and which values it accepts.

    In the row matrix the service builds, a numeric value is itself, a categorical value is its
    index in `categories` (as a float), and a missing value (JSON `null`, accepted only when
    `nullable`) is NaN. The fitted pipeline imputes and one-hot encodes from there.
    """

    name: str
    kind: FeatureKind = NUMERIC
    description: str = ""
    unit: str = ""
    min: float = -math.inf
    max: float = math.inf
    min_exclusive: bool = False
    max_exclusive: bool = False
    allowed: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None
    nullable: bool = False
    train_min: float | None = None
    train_max: float | None = None
    reference: Reference | None = None

    @property
    def categorical(self) -> bool:
        return self.kind == CATEGORICAL

    def describe_range(self) -> str:
        """The accepted values as a person reads them, e.g. `> 0 and <= 100`."""
        if self.categories is not None:
            return describe_choices(self.categories)
        if self.allowed is not None:
            return " or ".join(_fmt(v) for v in self.allowed)
        low = f"{'>' if self.min_exclusive else '>='} {_fmt(self.min)}"
        high = f"{'<' if self.max_exclusive else '<='} {_fmt(self.max)}"
        return f"{low} and {high}"

    def accepts(self, column: FloatArray) -> npt.NDArray[np.bool_]:
        """Element-wise: is each (finite) value of the row matrix acceptable?"""
        if self.categories is not None:
            codes = np.arange(len(self.categories), dtype=np.float64)
            return np.isin(column, codes)
        if self.allowed is not None:
            return np.isin(column, np.asarray(self.allowed, dtype=np.float64))
        low = column > self.min if self.min_exclusive else column >= self.min
        high = column < self.max if self.max_exclusive else column <= self.max
        return np.asarray(low & high)

    def encode(self, value: object) -> float:
        """A request's value as its entry in the row matrix, or `Refused` saying why not.

        The reference check for one value (type, null, range, allowed values, categories),
        worded as the contract's error details are; every faster check must agree with it.
        """
        if value is None and self.nullable:
            return math.nan
        if self.categories is not None:
            if type(value) is str:
                code = self.codes.get(value)
                if code is not None:
                    return code
                raise Refused(f"{self.name} must be {self.describe_range()}, got {shown(value)}")
            raise Refused(
                f"{self.name} must be a string, {self.describe_range()}; got {describe_type(value)}"
            )
        if type(value) is not float and type(value) is not int:
            raise Refused(f"must be a number, got {describe_type(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise Refused("number is too large for a double; send a finite number")
        if not self.admits(number):
            raise Refused(f"{self.name} must be {self.describe_range()}, got {_fmt(number)}")
        return number

    def admits(self, number: float) -> bool:
        """`accepts` for one finite number of a numeric feature, without numpy."""
        if self.allowed is not None:
            return number in self.allowed
        low = number > self.min if self.min_exclusive else number >= self.min
        high = number < self.max if self.max_exclusive else number <= self.max
        return low and high

    @property
    def codes(self) -> dict[str, float]:
        """Each category's entry in the row matrix (its index), computed once per feature."""
        found = _CODES.get(id(self))
        if found is None or found[0] is not self:
            found = _CODES[id(self)] = (
                self,
                {c: float(i) for i, c in enumerate(self.categories or ())},
            )
        return found[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: infinite bounds become null; fields that do not apply are left out."""
        data = asdict(self)
        for key in ("min", "max"):
            if not math.isfinite(data[key]):
                data[key] = None
        if self.categories is None:
            del data["categories"]
        else:
            for key in ("min", "max", "min_exclusive", "max_exclusive", "allowed"):
                del data[key]
        if self.reference is None:
            del data["reference"]
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Feature:
        """Inverse of `to_dict`; also reads the features of hand-written `*.schema.json` files,
        where only `name` is required (`kind` defaults to numeric, or to categorical when
        `categories` are listed)."""
        ref = raw.get("reference")
        allowed = raw.get("allowed")
        categories = raw.get("categories")
        kind = raw.get("kind", CATEGORICAL if categories is not None else NUMERIC)
        if kind not in (NUMERIC, CATEGORICAL):
            raise ValueError(f"feature {raw.get('name')!r}: kind must be numeric or categorical")
        return cls(
            name=str(raw["name"]),
            kind=kind,
            description=str(raw.get("description", "")),
            unit=str(raw.get("unit", "")),
            min=-math.inf if raw.get("min") is None else float(raw["min"]),
            max=math.inf if raw.get("max") is None else float(raw["max"]),
            min_exclusive=bool(raw.get("min_exclusive", False)),
            max_exclusive=bool(raw.get("max_exclusive", False)),
            allowed=None if allowed is None else tuple(float(v) for v in allowed),
            categories=None if categories is None else tuple(str(c) for c in categories),
            nullable=bool(raw.get("nullable", False)),
            train_min=raw.get("train_min"),
            train_max=raw.get("train_max"),
            reference=None
            if ref is None
            else Reference(
                tuple(ref["edges"]), tuple(ref["fractions"]), float(ref.get("missing", 0.0))
            ),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """The predicted column. A classifier's target lists its `classes` (labels in the order of
    the model's class index and probability columns); a regressor's has none."""

    name: str
    description: str = ""
    unit: str = ""
    classes: tuple[Label, ...] | None = None
    train_min: float | None = None
    train_max: float | None = None

    @property
    def task(self) -> Task:
        return REGRESSION if self.classes is None else CLASSIFICATION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["task"] = self.task
        if self.classes is None:
            del data["classes"]
        else:
            data["classes"] = list(self.classes)
            del data["train_min"], data["train_max"]
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Target:
        classes = raw.get("classes")
        return cls(
            name=str(raw["name"]),
            description=str(raw.get("description", "")),
            unit=str(raw.get("unit", "")),
            classes=None if classes is None else tuple(_label(c) for c in classes),
            train_min=raw.get("train_min"),
            train_max=raw.get("train_max"),
        )


# An example row as a request would send it: numbers, category strings, None for missing.
Example = dict[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """Name, features (in model input order), target and the notes that travel with them."""

    name: str
    features: tuple[Feature, ...]
    target: Target
    description: str = ""
    intended_use: str = ""
    caveats: tuple[str, ...] = ()
    examples: tuple[Example, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def task(self) -> Task:
        return self.target.task

    @property
    def numeric_only(self) -> bool:
        """True when every feature is numeric (the V2 `[N, F]` matrix form is allowed)."""
        return not any(f.categorical for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (infinite bounds become null)."""
        return {
            "name": self.name,
            "description": self.description,
            "task": self.task,
            "target": self.target.to_dict(),
            "features": [f.to_dict() for f in self.features],
            "intended_use": self.intended_use,
            "caveats": list(self.caveats),
            "examples": [dict(e) for e in self.examples],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSchema:
        """Inverse of `to_dict`; also reads the hand-written `*.schema.json` files."""
        return cls(
            name=str(data["name"]),
            features=tuple(Feature.from_dict(raw) for raw in data["features"]),
            target=Target.from_dict(data["target"]),
            description=str(data.get("description", "")),
            intended_use=str(data.get("intended_use", "")),
            caveats=tuple(data.get("caveats", ())),
            examples=tuple(data.get("examples", ())),
        )

    def with_features(self, features: Sequence[Feature]) -> ModelSchema:
        return replace(self, features=tuple(features))


def _label(value: Any) -> Label:
    """A class label as JSON carries it: integers stay integers, anything else is text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)


CHOICES_SHOWN = 10


def describe_choices(choices: Sequence[str]) -> str:
    """Accepted text values as a message lists them: all of a few, else the first few and how
    many there are."""
    quoted = [repr(c) for c in choices[:CHOICES_SHOWN]]
    if len(choices) <= CHOICES_SHOWN:
        return "one of " + ", ".join(quoted)
    return f"one of {len(choices)} values: " + ", ".join(quoted) + ", ..."


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


_NUMBER_TYPES = frozenset({int, float})
SHOWN_CHARACTERS = 40


def shown(value: object) -> str:
    """A value as an error message quotes it: its repr, cut short when long."""
    text = (
        repr(value) if not isinstance(value, int) or value.bit_length() < 128 else "a huge integer"
    )
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[: SHOWN_CHARACTERS - 10]}... ({len(text)} characters)"


def describe_type(value: object) -> str:
    """A JSON-level name for a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def to_floats(
    values: Sequence[object], loc: Callable[[int], Loc], problems: list[Problem]
) -> FloatArray:
    """Values as float64; each non-number or non-finite value becomes NaN and a problem."""
    if set(map(type, values)) <= _NUMBER_TYPES:
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            pass
        else:
            if np.isfinite(array).all():
                return array
    array = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        array[i] = _one_float(value, loc(i), problems)
    return array


def _one_float(value: object, where: Loc, problems: list[Problem]) -> float:
    if type(value) is float or type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
        problems.append(Problem(where, "number is too large for a double; send a finite number"))
        return math.nan
    problems.append(Problem(where, f"must be a number, got {describe_type(value)}"))
    return math.nan


def check_ranges(
    schema: ModelSchema, matrix: FloatArray, loc: Callable[[int, int], Loc]
) -> list[Problem]:
    """Every finite value outside its feature's accepted range, as problems (row-major)."""
    found: list[tuple[int, int, Problem]] = []
    for j, feature in enumerate(schema.features):
        column = matrix[:, j]
        bad = ~feature.accepts(column) & ~np.isnan(column)
        for i in np.flatnonzero(bad).tolist():
            message = f"{feature.name} must be {feature.describe_range()}, got {_fmt(column[i])}"
            found.append((i, j, Problem(loc(i, j), message)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [problem for _, _, problem in found]
