"""Value checks: a request's values against a model's schema, into the model's row matrix.

The row matrix is float64 (N, F) in schema feature order: a numeric value is itself, a
categorical value its index in the feature's categories, a missing value NaN. A dialect codec
only reshapes a body into values per feature (or rows of F values) and says where each value
sits in the body; `Checker` does every check on the values, in one of two ways with one answer:

- `row`, `rows` and `columns` are the fast paths for well-formed requests: a few C-level passes
  that return the matrix only if every value would pass `Feature.encode`, else None;
- `column` is the reference: each value through `Feature.encode`, every refusal kept as a
  `Problem` at its location (`Problems`, which keeps the first `limit` in full and counts the
  rest, so a body of ten thousand bad rows costs a count, not a ten-megabyte answer).
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from ml_service.errors import InvalidInput, Loc, PayloadTooLarge, Problem
from ml_service.model.schema import FloatArray, ModelSchema, Refused

_LARGEST = sys.float_info.max
NUMBERS = frozenset({int, float})
DEFAULT_DETAILS = 100


class Problems:
    """The problems found in one request: the first `limit` kept, every one counted."""

    __slots__ = ("items", "limit", "total")

    def __init__(self, limit: int = DEFAULT_DETAILS) -> None:
        self.items: list[Problem] = []
        self.limit = limit
        self.total = 0

    def add(self, loc: Loc, msg: str) -> None:
        self.total += 1
        if len(self.items) < self.limit:
            self.items.append(Problem(loc, msg))

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self) -> InvalidInput:
        """The 422 listing the kept problems and saying how many there were in all."""
        count = self.total
        noun = "problem" if count == 1 else "problems"
        listed = f", the first {len(self.items)} listed" if count > len(self.items) else ""
        first = self.items[0]
        where = "/".join(str(p) for p in first.loc) or "body"
        return InvalidInput(
            f"the request does not match the model's input schema ({count} {noun}{listed}; "
            f"first at {where}: {first.msg})",
            self.items,
        )

    def raise_if_any(self) -> None:
        if self.total:
            raise self.error()


def invalid(loc: Loc, msg: str) -> InvalidInput:
    """The 422 for a request with one structural problem."""
    problems = Problems()
    problems.add(loc, msg)
    return problems.error()


def check_row_count(rows: int, max_rows: int) -> None:
    """413 when a request holds more rows than allowed (checked before any value)."""
    if rows > max_rows:
        raise PayloadTooLarge(
            f"request has {rows} rows; the limit is {max_rows} per request: split it"
        )


def numbers_only(values: Any) -> bool:
    """True when every value is a JSON number (int or float; booleans are not numbers)."""
    return set(map(type, values)) <= NUMBERS


class Checker:
    """A schema's checks, prepared once per served model.

    Bounds are inclusive float64 arrays: an exclusive bound `b` becomes the next double after
    it (for doubles, `x > b` exactly when `x >= nextafter(b, inf)`), infinite bounds become the
    largest finite double so one comparison also refuses NaN and infinities. A feature with an
    `allowed` list takes only those values, whatever its bounds, as `Feature.accepts` does.
    A categorical feature's values are looked up in its codes.
    """

    __slots__ = (
        "allowed",
        "bounds",
        "categorical",
        "codes",
        "features",
        "getter",
        "high",
        "low",
        "name_set",
        "names",
        "numeric_only",
        "schema",
        "width",
    )

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self.features = schema.features
        self.names = schema.names
        self.name_set = frozenset(self.names)
        self.width = len(self.names)
        low: list[float] = []
        high: list[float] = []
        self.allowed: list[tuple[int, tuple[float, ...]]] = []
        self.codes: list[dict[str, float] | None] = []
        for j, feature in enumerate(schema.features):
            self.codes.append(feature.codes if feature.categorical else None)
            if feature.allowed is not None or feature.categorical:
                if feature.allowed is not None:
                    self.allowed.append((j, feature.allowed))
                low.append(-_LARGEST)
                high.append(_LARGEST)
                continue
            lo = float(np.nextafter(feature.min, np.inf)) if feature.min_exclusive else feature.min
            hi = float(np.nextafter(feature.max, -np.inf)) if feature.max_exclusive else feature.max
            low.append(max(lo, -_LARGEST))
            high.append(min(hi, _LARGEST))
        self.categorical = [j for j, codes in enumerate(self.codes) if codes is not None]
        self.numeric_only = not self.categorical
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        nullable = [f.nullable for f in schema.features]
        self.bounds = list(zip(low, high, self.codes, nullable, strict=True))
        getter = operator.itemgetter(*self.names)
        self.getter: Callable[[Any], Any] = getter if self.width > 1 else lambda d: (getter(d),)

    # --- fast paths: the matrix, or None on any doubt

    def accepts(self, matrix: FloatArray) -> bool:
        """True when every value of a numeric matrix is finite and within its feature's values
        (categorical columns must already hold valid codes)."""
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

    def row(self, values: Sequence[Any]) -> FloatArray | None:
        """One row of F values in schema order as a checked (1, F) matrix, or None.

        Plain Python: for one row, numpy's per-call overhead is most of the cost. Numbers are
        compared as doubles, as the matrix path compares them.
        """
        row: list[float] = []
        append = row.append
        try:
            for value, (low, high, codes, nullable) in zip(values, self.bounds, strict=True):
                if value is None and nullable:
                    append(math.nan)
                elif codes is None:
                    kind = type(value)
                    if kind is not float and kind is not int:
                        return None
                    number = float(value)
                    if not low <= number <= high:
                        return None
                    append(number)
                else:
                    append(codes[value])
        except (OverflowError, KeyError, TypeError, ValueError):
            return None
        for j, allowed in self.allowed:
            if row[j] not in allowed and not (math.isnan(row[j]) and self.features[j].nullable):
                return None
        return np.array([row], dtype=np.float64)

    def rows(self, values: Any, shape: tuple[int, int] | None = None) -> FloatArray | None:
        """N rows of F numbers (or N*F numbers of `shape`) as a checked matrix, or None.

        Numeric schemas only; rows holding categorical values go through `columns`.
        """
        if not self.numeric_only:
            return None
        try:
            matrix = np.array(values, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            return None
        if shape is not None:
            matrix = matrix.reshape(shape)
        if matrix.ndim != 2 or matrix.shape[1] != self.width or not self.accepts(matrix):
            return None
        return matrix

    def columns(self, columns: Sequence[Sequence[Any]]) -> FloatArray | None:
        """F columns of N values, in schema order, as a checked (N, F) C-ordered matrix, or
        None. Numeric columns must hold JSON numbers only, categorical ones known categories."""
        if self.numeric_only:
            if not all(map(numbers_only, columns)):
                return None
            try:
                matrix = np.array(columns, dtype=np.float64)
            except (OverflowError, ValueError, TypeError):
                return None
            if matrix.ndim != 2:
                return None
            matrix = np.ascontiguousarray(matrix.T)
            return matrix if self.accepts(matrix) else None
        count = len(columns[0]) if columns else 0
        matrix = np.empty((count, self.width), dtype=np.float64)
        try:
            for j, (column, codes) in enumerate(zip(columns, self.codes, strict=True)):
                if len(column) != count:
                    return None
                if codes is None:
                    if not numbers_only(column):
                        return None
                    matrix[:, j] = column
                else:
                    matrix[:, j] = [codes[value] for value in column]
        except (OverflowError, KeyError, TypeError, ValueError):
            return None
        return matrix if self.accepts(matrix) else None

    # --- the reference: every value checked, every problem kept

    def column(
        self,
        j: int,
        values: Sequence[Any],
        loc: Callable[[int], Loc],
        problems: Problems,
        skip: Collection[int] = (),
    ) -> FloatArray:
        """Feature j's values checked one by one; a refused value becomes NaN and a problem at
        `loc(i)`. Values at `skip` (already reported by the codec) become NaN silently."""
        encode = self.features[j].encode
        out = np.empty(len(values), dtype=np.float64)
        for i, value in enumerate(values):
            if i in skip:
                out[i] = math.nan
                continue
            try:
                out[i] = encode(value)
            except Refused as exc:
                out[i] = math.nan
                problems.add(loc(i), exc.message)
        return out

    def finish(self, columns: Sequence[FloatArray], problems: Problems) -> FloatArray:
        """Stack checked columns into the row matrix, or raise every problem found."""
        problems.raise_if_any()
        return np.column_stack(columns) if columns else np.empty((0, self.width))
