"""The original app's dialect: `POST /predict`, pandas "columns" orient or lists per feature.

`{"RM": {"0": 6.5, "1": 5.9}, ...}` or `{"RM": [6.5, 5.9], ...}`, one form per request. Rows
come back in the order the request's first feature lists its row keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_service.api.dialects import (
    check_row_count,
    finish,
    invalid,
    numbers_only,
    prepared,
    to_floats,
)
from ml_service.errors import Loc, Problem
from ml_service.model.schema import FloatArray, ModelSchema, describe_type

FORMS: dict[type, str] = {dict: "an object of row keys to values", list: "a list of values"}


def parse(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray:
    """The request's rows as a checked matrix in schema column order."""
    rows = _fast(body, schema, max_rows)
    return parse_exact(body, schema, max_rows) if rows is None else rows


def _fast(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray | None:
    """The matrix of a well-formed request (every feature once, one form, aligned rows, numbers
    in range), or None for anything else."""
    prep = prepared(schema)
    if type(body) is not dict or len(body) != prep.width or body.keys() != prep.name_set:
        return None
    first = next(iter(body.values()))
    form = type(first)
    count = len(first) if form is dict or form is list else 0
    if not 0 < count <= max_rows:
        return None
    if count == 1 and form is dict:  # the most common request: one row, keyed
        (key,) = first
        row = []
        for name in prep.names:
            column = body[name]
            if type(column) is not dict or len(column) != 1 or key not in column:
                return None
            row.append(column[key])
        return prep.row(row) if numbers_only(row) else None
    columns: list[Any] = []
    if form is dict:
        order = list(first)
        for name in prep.names:
            column = body[name]
            if type(column) is not dict or len(column) != count:
                return None
            if column is first or list(column) == order:
                values = list(column.values())
            elif column.keys() == first.keys():
                values = [column[key] for key in order]
            else:
                return None
            columns.append(values)
    else:
        for name in prep.names:
            column = body[name]
            if type(column) is not list or len(column) != count:
                return None
            columns.append(column)
    if not all(map(numbers_only, columns)):
        return None
    return prep.matrix(columns, columns=True)


def parse_exact(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray:
    """The reference reader: the matrix, or every problem in the request with its location."""
    if type(body) is not dict:
        raise invalid([Problem((), f"body must be a JSON object, got {describe_type(body)}")])
    names = schema.names
    check_row_count(max((len(v) for v in body.values() if type(v) in FORMS), default=0), max_rows)

    problems: list[Problem] = []
    for key in body:
        if key not in names:
            problems.append(Problem((key,), f"unknown feature; expected {', '.join(names)}"))
    for name in names:
        if name not in body:
            problems.append(Problem((name,), "missing feature"))
    present = [key for key in body if key in names]
    usable: list[str] = []
    form: type | None = None
    for name in present:
        kind = type(body[name])
        if kind not in FORMS:
            problems.append(
                Problem(
                    (name,),
                    f"must be {FORMS[dict]} or {FORMS[list]}, got {describe_type(body[name])}",
                )
            )
        elif form is None:
            form = kind
            usable.append(name)
        elif kind is not form:
            problems.append(
                Problem(
                    (name,),
                    f"is {FORMS[kind]} but {usable[0]} is {FORMS[form]}; "
                    "use one form for every feature",
                )
            )
        else:
            usable.append(name)
    if form is None:
        raise invalid(problems or [Problem((), "body has no features")])

    reference = usable[0]
    order = list(body[reference]) if form is dict else list(range(len(body[reference])))
    aligned = [reference]
    for name in usable[1:]:
        problem = _misaligned(body[name], order, form, reference)
        if problem:
            problems.append(Problem((name,), problem))
        else:
            aligned.append(name)
    if not order:
        raise invalid([*problems, Problem((reference,), "no rows; send at least one")])

    columns = []
    for name in names:
        if name in aligned:
            columns.append(to_floats(_values(body[name], order, form), _loc(name, order), problems))
        else:
            columns.append(np.full(len(order), np.nan))
    return finish(schema, columns, problems, lambda i, j: (names[j], order[i]))


def _misaligned(column: Any, order: list[Any], form: type, reference: str) -> str:
    """Why a feature's rows do not line up with the reference feature's, or ''."""
    if form is list:
        if len(column) != len(order):
            return f"has {len(column)} values but {reference} has {len(order)}"
        return ""
    if len(column) == len(order) and column.keys() == set(order):
        return ""
    keys = set(order)
    missing = [k for k in order if k not in column]
    extra = [k for k in column if k not in keys]
    parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else ""]
    return f"row keys differ from {reference}'s: " + ", ".join(p for p in parts if p)


def _values(column: Any, order: list[Any], form: type) -> list[Any]:
    if form is list:
        return list(column)
    if list(column) == order:
        return list(column.values())
    return [column[key] for key in order]


def _loc(name: str, order: list[Any]) -> Any:
    def where(i: int) -> Loc:
        return (name, order[i])

    return where


def render(predictions: FloatArray) -> dict[str, Any]:
    return {"prediction": predictions}


def example(schema: ModelSchema) -> dict[str, Any]:
    """A one-row request built from the schema's first example (for docs and clients)."""
    row = schema.examples[0] if schema.examples else {}
    return {name: {"0": row.get(name, 0)} for name in schema.names}
