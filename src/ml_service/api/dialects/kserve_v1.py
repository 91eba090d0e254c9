"""KServe V1: `{"instances": [...]}` (or `"inputs"`), each instance an object or a value list.

Other top-level keys are ignored, as KServe does.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
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

FORMS: dict[type, str] = {dict: "an object", list: "a list"}


def parse(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray:
    """The instances as a checked matrix in schema column order."""
    rows = _fast(body, schema, max_rows)
    return parse_exact(body, schema, max_rows) if rows is None else rows


def _fast(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray | None:
    """The matrix of a well-formed request (instances all objects with exactly the features, or
    all lists of F values; numbers in range), or None for anything else."""
    if type(body) is not dict:
        return None
    if "instances" in body:
        if "inputs" in body:
            return None
        instances = body["instances"]
    else:
        instances = body.get("inputs")
    if type(instances) is not list or not 0 < len(instances) <= max_rows:
        return None
    prep = prepared(schema)
    forms = set(map(type, instances))
    if forms not in ({dict}, {list}):
        return None
    if set(map(len, instances)) != {prep.width}:
        return None
    if forms == {dict}:
        try:
            # Each instance has exactly F keys, so finding every feature means no other key.
            rows: Any = list(map(prep.getter, instances))
        except KeyError:
            return None
    else:
        rows = instances
    if not numbers_only(chain.from_iterable(rows)):
        return None
    return prep.row(list(rows[0])) if len(rows) == 1 else prep.matrix(rows)


def parse_exact(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray:
    """The reference reader: the matrix, or every problem in the request with its location."""
    if type(body) is not dict:
        raise invalid([Problem((), f"body must be a JSON object, got {describe_type(body)}")])
    if "instances" in body and "inputs" in body:
        raise invalid([Problem(("inputs",), "send instances or inputs, not both")])
    key = "instances" if "instances" in body or "inputs" not in body else "inputs"
    if key not in body:
        raise invalid([Problem(("instances",), "missing; send a list of instances")])
    instances = body[key]
    if type(instances) is not list:
        raise invalid(
            [Problem((key,), f"must be a list of instances, got {describe_type(instances)}")]
        )
    check_row_count(len(instances), max_rows)
    if not instances:
        raise invalid([Problem((key,), "no instances; send at least one")])

    names = schema.names
    width = len(names)
    problems: list[Problem] = []
    form = type(instances[0]) if type(instances[0]) in FORMS else dict
    good: list[int] = []
    for i, instance in enumerate(instances):
        kind = type(instance)
        if kind is not form:
            what = FORMS.get(kind, describe_type(instance))
            problems.append(
                Problem(
                    (key, i),
                    f"is {what} but instance 0 is {FORMS[form]}; use one form for every instance",
                )
            )
        elif form is dict and instance.keys() != set(names):
            problems.extend(
                Problem((key, i, n), "missing feature") for n in names if n not in instance
            )
            problems.extend(
                Problem((key, i, k), f"unknown feature; expected {', '.join(names)}")
                for k in instance
                if k not in names
            )
        elif form is list and len(instance) != width:
            problems.append(
                Problem(
                    (key, i),
                    f"has {len(instance)} values; expected {width} in order {', '.join(names)}",
                )
            )
        else:
            good.append(i)

    rows = instances if len(good) == len(instances) else [instances[i] for i in good]
    fields: tuple[str, ...] | range = names if form is dict else range(width)
    columns = []
    for field in fields:
        values = to_floats([row[field] for row in rows], _loc(key, good, field), problems)
        if len(good) != len(instances):
            full = np.full(len(instances), np.nan)
            full[good] = values
            values = full
        columns.append(values)
    return finish(schema, columns, problems, lambda i, j: (key, i, fields[j]))


def _loc(key: str, good: list[int], field: str | int) -> Callable[[int], Loc]:
    def where(k: int) -> Loc:
        return (key, good[k], field)

    return where


def render(predictions: FloatArray) -> dict[str, Any]:
    return {"predictions": predictions}
