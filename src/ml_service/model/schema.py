"""The feature schema a model carries in its artifact, and the value checks it implies.

The web layer never names a feature: it reads them from here, so a model trained on other
columns serves them instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ml_service.errors import Loc, Problem

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Reference:
    """A feature's training distribution: bin edges and the share of rows in each bin."""

    edges: tuple[float, ...]
    fractions: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column: what it means and which values it accepts."""

    name: str
    description: str = ""
    unit: str = ""
    min: float = -math.inf
    max: float = math.inf
    min_exclusive: bool = False
    max_exclusive: bool = False
    allowed: tuple[float, ...] | None = None
    train_min: float | None = None
    train_max: float | None = None
    reference: Reference | None = None

    def describe_range(self) -> str:
        """The accepted values as a person reads them, e.g. `> 0 and <= 100`."""
        if self.allowed is not None:
            return " or ".join(_fmt(v) for v in self.allowed)
        low = f"{'>' if self.min_exclusive else '>='} {_fmt(self.min)}"
        high = f"{'<' if self.max_exclusive else '<='} {_fmt(self.max)}"
        return f"{low} and {high}"

    def accepts(self, column: FloatArray) -> npt.NDArray[np.bool_]:
        """Element-wise: is each (finite) value acceptable?"""
        if self.allowed is not None:
            return np.isin(column, np.asarray(self.allowed, dtype=np.float64))
        low = column > self.min if self.min_exclusive else column >= self.min
        high = column < self.max if self.max_exclusive else column <= self.max
        return np.asarray(low & high)


@dataclass(frozen=True, slots=True)
class Target:
    """The predicted column."""

    name: str
    description: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """Name, features (in model input order), target and the notes that travel with them."""

    name: str
    features: tuple[Feature, ...]
    target: Target
    description: str = ""
    intended_use: str = ""
    caveats: tuple[str, ...] = ()
    examples: tuple[dict[str, float], ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (infinite bounds become null)."""
        data = asdict(self)
        for feature in data["features"]:
            for key in ("min", "max"):
                if not math.isfinite(feature[key]):
                    feature[key] = None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSchema:
        """Inverse of `to_dict`; also reads the hand-written `*.schema.json` files."""
        features = []
        for raw in data["features"]:
            ref = raw.get("reference")
            allowed = raw.get("allowed")
            features.append(
                Feature(
                    name=str(raw["name"]),
                    description=str(raw.get("description", "")),
                    unit=str(raw.get("unit", "")),
                    min=-math.inf if raw.get("min") is None else float(raw["min"]),
                    max=math.inf if raw.get("max") is None else float(raw["max"]),
                    min_exclusive=bool(raw.get("min_exclusive", False)),
                    max_exclusive=bool(raw.get("max_exclusive", False)),
                    allowed=None if allowed is None else tuple(float(v) for v in allowed),
                    train_min=raw.get("train_min"),
                    train_max=raw.get("train_max"),
                    reference=None
                    if ref is None
                    else Reference(tuple(ref["edges"]), tuple(ref["fractions"])),
                )
            )
        target = data["target"]
        return cls(
            name=str(data["name"]),
            features=tuple(features),
            target=Target(
                str(target["name"]), str(target.get("description", "")), target.get("unit", "")
            ),
            description=str(data.get("description", "")),
            intended_use=str(data.get("intended_use", "")),
            caveats=tuple(data.get("caveats", ())),
            examples=tuple(data.get("examples", ())),
        )

    def with_features(self, features: Sequence[Feature]) -> ModelSchema:
        return replace(self, features=tuple(features))


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


_NUMBER_TYPES = frozenset({int, float})


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
