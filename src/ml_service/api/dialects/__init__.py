"""Request dialects: each turns a parsed JSON body into a checked (N, F) float64 matrix.

Every dialect collects all problems before raising, counts rows before checking values (413
wins over 422), and reports each problem at its path from the body's root.

Each dialect's `parse` first tries a fast path for the well-formed common case: it builds the
matrix with a few C-level passes and accepts it only if every check the exact reader makes
would pass (every value a finite JSON number within its feature's range, rows aligned). On any
doubt it returns nothing and `parse_exact` (the reference implementation, which collects every
problem with its location) decides, so both paths give the same matrix or the same error.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ml_service.errors import InvalidInput, Loc, PayloadTooLarge, Problem
from ml_service.model.schema import FloatArray, ModelSchema, check_ranges, describe_type, to_floats

__all__ = [
    "Prepared",
    "check_row_count",
    "describe_type",
    "finish",
    "invalid",
    "prepared",
    "to_floats",
]

NUMBERS = frozenset({int, float})
_LARGEST = sys.float_info.max


class Prepared:
    """What the fast paths need from a schema, computed once per schema.

    Bounds are inclusive float64 arrays: an exclusive bound `b` becomes the next double after
    it (for doubles, `x > b` exactly when `x >= nextafter(b, inf)`), infinite bounds become the
    largest finite double so one comparison also refuses NaN and infinities. A feature with an
    `allowed` list takes only those values, whatever its bounds, as `Feature.accepts` does.
    """

    __slots__ = (
        "allowed",
        "bounds",
        "getter",
        "high",
        "low",
        "name_set",
        "names",
        "schema",
        "width",
    )

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self.names = schema.names
        self.name_set = frozenset(self.names)
        self.width = len(self.names)
        low: list[float] = []
        high: list[float] = []
        self.allowed: list[tuple[int, tuple[float, ...]]] = []
        for j, feature in enumerate(schema.features):
            if feature.allowed is not None:
                self.allowed.append((j, feature.allowed))
                low.append(-_LARGEST)
                high.append(_LARGEST)
                continue
            lo = float(np.nextafter(feature.min, np.inf)) if feature.min_exclusive else feature.min
            hi = float(np.nextafter(feature.max, -np.inf)) if feature.max_exclusive else feature.max
            low.append(max(lo, -_LARGEST))
            high.append(min(hi, _LARGEST))
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.bounds = list(zip(low, high, strict=True))
        getter = operator.itemgetter(*self.names)
        self.getter: Callable[[Any], Any] = getter if self.width > 1 else lambda d: (getter(d),)

    def accepts(self, matrix: FloatArray) -> bool:
        """True when every value is finite and within its feature's accepted values."""
        if not ((matrix >= self.low) & (matrix <= self.high)).all():
            return False
        for j, values in self.allowed:
            column = matrix[:, j]
            ok = column == values[0]
            for value in values[1:]:
                ok |= column == value
            if not ok.all():
                return False
        return True

    def row(self, values: list[Any]) -> FloatArray | None:
        """One row of F numbers as a checked (1, F) matrix, or None on any doubt.

        The same checks as `matrix`, in plain Python: for one row, numpy's per-call overhead is
        most of the cost. Values are compared as doubles, as the matrix path compares them.
        """
        try:
            row = [float(v) for v in values]
        except OverflowError:
            return None
        for value, (low, high) in zip(row, self.bounds, strict=True):
            if not low <= value <= high:
                return None
        for j, allowed in self.allowed:
            if row[j] not in allowed:
                return None
        return np.array([row], dtype=np.float64)

    def matrix(
        self, values: Any, columns: bool = False, shape: tuple[int, int] | None = None
    ) -> FloatArray | None:
        """N rows of F numbers (F columns of N numbers; N*F numbers of `shape`) as a checked
        (N, F) float64 matrix, C-ordered, or None on any doubt."""
        try:
            matrix = np.array(values, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            return None
        if shape is not None:
            matrix = matrix.reshape(shape)
        if matrix.ndim != 2:
            return None
        if columns:
            matrix = np.ascontiguousarray(matrix.T)
        if matrix.shape[1] != self.width or not self.accepts(matrix):
            return None
        return matrix


_PREPARED: dict[int, Prepared] = {}


def prepared(schema: ModelSchema) -> Prepared:
    """The schema's `Prepared` form, built on first use."""
    found = _PREPARED.get(id(schema))
    if found is None or found.schema is not schema:
        if len(_PREPARED) > 16:
            _PREPARED.clear()
        found = _PREPARED[id(schema)] = Prepared(schema)
    return found


def numbers_only(values: Any) -> bool:
    """True when every value is a JSON number (int or float; booleans are not numbers)."""
    return set(map(type, values)) <= NUMBERS


def check_row_count(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise PayloadTooLarge(
            f"request has {rows} rows; the limit is {max_rows} per request: split it"
        )


def invalid(problems: Sequence[Problem]) -> InvalidInput:
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    first = problems[0]
    where = "/".join(str(p) for p in first.loc) or "body"
    return InvalidInput(
        f"the request does not match the model's input schema ({count} {noun}; "
        f"first at {where}: {first.msg})",
        problems,
    )


def finish(
    schema: ModelSchema,
    columns: Sequence[FloatArray],
    problems: list[Problem],
    loc: Callable[[int, int], Loc],
) -> FloatArray:
    """Stack columns into the model's matrix, add range problems, raise if anything is wrong."""
    matrix = np.column_stack(columns) if columns else np.empty((0, 0))
    problems.extend(check_ranges(schema, matrix, loc))
    if problems:
        raise invalid(problems)
    return matrix
