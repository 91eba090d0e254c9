"""Request dialects: each turns a parsed JSON body into a checked (N, F) float64 matrix.

Every dialect collects all problems before raising, counts rows before checking values (413
wins over 422), and reports each problem at its path from the body's root.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ml_service.errors import InvalidInput, Loc, PayloadTooLarge, Problem
from ml_service.model.schema import FloatArray, ModelSchema, check_ranges, describe_type, to_floats

__all__ = [
    "check_row_count",
    "describe_type",
    "finish",
    "invalid",
    "to_floats",
]


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
