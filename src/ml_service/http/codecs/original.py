"""The original app's dialect: `POST /predict`, pandas "columns" orient or lists per feature.

`{"RM": {"0": 6.5, "1": 5.9}, ...}` or `{"RM": [6.5, 5.9], ...}`, one form per request. Rows
come back in the order the request's first feature lists its row keys. Answers
`{"prediction": [...]}`, and a classifier's `"probabilities": [{label: p}, ...]` too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from typing_extensions import override

from ml_service.http.codecs.base import (
    Columns,
    Endpoint,
    Limits,
    ListAnswer,
    value_schema,
)
from ml_service.model.checks import Checker, Problems, check_row_count, invalid
from ml_service.model.schema import FloatArray, ModelSchema, describe_type

FORMS: dict[type, str] = {dict: "an object of row keys to values", list: "a list of values"}


class Original(ListAnswer):
    answer_key = "prediction"
    dialect = "original"
    tag = "original"
    endpoints = (Endpoint("/predict", "Predict with the default model (original dialect)"),)

    @override
    def decode(self, body: Any, checker: Checker, limits: Limits) -> tuple[FloatArray, None]:
        rows = _fast(body, checker, limits.max_rows)
        return (_exact(body, checker, limits) if rows is None else rows), None

    @override
    def request_schema(self, schema: ModelSchema) -> dict[str, Any]:
        properties = {}
        for feature in schema.features:
            value = value_schema(feature)
            properties[feature.name] = {
                "oneOf": [
                    {"type": "object", "additionalProperties": value, "minProperties": 1},
                    {"type": "array", "items": value, "minItems": 1},
                ]
            }
        return {
            "type": "object",
            "description": 'Each feature maps to `{row_key: value}` (pandas "columns" orient) '
            "or to a list of values; one form for every feature.",
            "properties": properties,
            "required": list(schema.names),
            "additionalProperties": False,
        }

    @override
    def path(self, model: str) -> str:
        return "/predict"

    @override
    def write(self, columns: Columns) -> Any:
        return {name: {str(i): v for i, v in enumerate(values)} for name, values in columns.items()}

    @override
    def claims(self, body: Any) -> bool:
        return isinstance(body, dict) and bool(body)

    @override
    def columns(self, body: Any) -> Columns:
        return {n: list(v.values()) if isinstance(v, dict) else list(v) for n, v in body.items()}

    @override
    def rows(self, body: Any) -> int:
        first = next(iter(body.values()))
        return len(first) if isinstance(first, dict | list) else 1


def _fast(body: Any, checker: Checker, max_rows: int) -> FloatArray | None:
    """The matrix of a well-formed request (every feature once, one form, aligned rows, valid
    values), or None for anything else."""
    if type(body) is not dict or len(body) != checker.width or body.keys() != checker.name_set:
        return None
    first = next(iter(body.values()))
    form = type(first)
    count = len(first) if form is dict or form is list else 0
    if not 0 < count <= max_rows:
        return None
    names = checker.names
    if count == 1 and form is dict:  # the most common request: one row, keyed
        (key,) = first
        row = []
        for name in names:
            column = body[name]
            if type(column) is not dict or len(column) != 1 or key not in column:
                return None
            row.append(column[key])
        return checker.row(row)
    columns: list[Any] = []
    if form is dict:
        order = list(first)
        for name in names:
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
        for name in names:
            column = body[name]
            if type(column) is not list or len(column) != count:
                return None
            columns.append(column)
    return checker.columns(columns)


def _exact(body: Any, checker: Checker, limits: Limits) -> FloatArray:
    """The reference reader: the matrix, or every problem in the request with its location."""
    if type(body) is not dict:
        raise invalid((), f"body must be a JSON object, got {describe_type(body)}")
    names = checker.names
    check_row_count(
        max((len(v) for v in body.values() if type(v) in FORMS), default=0), limits.max_rows
    )

    problems = Problems(limits.max_details)
    for key in body:
        if key not in checker.name_set:
            problems.add((key,), f"unknown feature; expected {', '.join(names)}")
    for name in names:
        if name not in body:
            problems.add((name,), "missing feature")
    usable: list[str] = []
    form: type | None = None
    for name in (key for key in body if key in checker.name_set):
        kind = type(body[name])
        if kind not in FORMS:
            problems.add(
                (name,), f"must be {FORMS[dict]} or {FORMS[list]}, got {describe_type(body[name])}"
            )
        elif form is None:
            form = kind
            usable.append(name)
        elif kind is not form:
            problems.add(
                (name,),
                f"is {FORMS[kind]} but {usable[0]} is {FORMS[form]}; use one form for every "
                "feature",
            )
        else:
            usable.append(name)
    if form is None:
        if not problems:
            problems.add((), "body has no features")
        raise problems.error()

    reference = usable[0]
    order = list(body[reference]) if form is dict else list(range(len(body[reference])))
    aligned = {reference}
    for name in usable[1:]:
        problem = _misaligned(body[name], order, form, reference)
        if problem:
            problems.add((name,), problem)
        else:
            aligned.add(name)
    if not order:
        problems.add((reference,), "no rows; send at least one")
        raise problems.error()

    columns = []
    for j, name in enumerate(names):
        if name in aligned:
            values = _values(body[name], order, form)
            columns.append(checker.column(j, values, _loc(name, order), problems))
        else:
            columns.append(np.full(len(order), np.nan))
    return checker.finish(columns, problems)


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
    def where(i: int) -> tuple[str | int, ...]:
        return (name, order[i])

    return where
