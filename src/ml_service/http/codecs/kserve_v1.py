"""KServe V1: `POST /v1/models/{name}:predict` with `{"instances": [...]}` (or `"inputs"`).

Each instance is an object of feature values, or a list of values in schema order (numbers and
category strings mixed as the schema says); one form per request. Other top-level keys are
ignored, as KServe does. Answers `{"predictions": [...]}`, and a classifier's
`"probabilities": [{label: p}, ...]` too.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import override

from ml_service.errors import ClientError
from ml_service.http.codecs.base import (
    Columns,
    Endpoint,
    Limits,
    ListAnswer,
    value_schema,
)
from ml_service.model.checks import Checker, Problems, check_row_count, invalid, numbers_only
from ml_service.model.schema import FloatArray, ModelSchema, describe_type

if TYPE_CHECKING:
    from ml_service.errors import Loc

FORMS: dict[type, str] = {dict: "an object", list: "a list"}


class KServeV1(ListAnswer):
    answer_key = "predictions"
    dialect = "v1"
    tag = "kserve-v1"
    endpoints = (Endpoint("/v1/models/{name:model}:predict", "Predict (KServe V1)"),)

    @override
    def decode(self, body: Any, checker: Checker, limits: Limits) -> tuple[FloatArray, None]:
        rows = _fast(body, checker, limits.max_rows)
        return (_exact(body, checker, limits) if rows is None else rows), None

    @override
    def request_schema(self, schema: ModelSchema) -> dict[str, Any]:
        values = [value_schema(f) for f in schema.features]
        instance = {
            "oneOf": [
                {
                    "type": "object",
                    "properties": dict(zip(schema.names, values, strict=True)),
                    "required": list(schema.names),
                    "additionalProperties": False,
                },
                {
                    "type": "array",
                    "prefixItems": values,
                    "minItems": len(values),
                    "maxItems": len(values),
                    "description": f"Values in schema order: {', '.join(schema.names)}",
                },
            ]
        }
        rows = {"type": "array", "items": instance, "minItems": 1}
        return {
            "type": "object",
            "description": "Rows as objects of feature values, or as value lists in schema "
            "order; `inputs` is a synonym of `instances`.",
            "properties": {"instances": rows, "inputs": rows},
        }

    @override
    def path(self, model: str) -> str:
        return f"/v1/models/{model}:predict"

    @override
    def write(self, columns: Columns) -> Any:
        count = len(next(iter(columns.values()), []))
        return {"instances": [{n: v[i] for n, v in columns.items()} for i in range(count)]}

    @override
    def claims(self, body: Any) -> bool:
        return isinstance(body, dict) and any(
            isinstance(body.get(key), list) for key in ("instances", "inputs")
        )

    @override
    def columns(self, body: Any) -> Columns:
        instances = _instances(body) or []
        if not instances or not all(isinstance(i, dict) for i in instances):
            raise ClientError("instances given as value lists cannot be converted: no names")
        return {name: [i.get(name) for i in instances] for name in instances[0]}

    @override
    def rows(self, body: Any) -> int:
        return len(_instances(body) or [])


def _instances(body: Any) -> Any:
    return body.get("instances", body.get("inputs"))


def _fast(body: Any, checker: Checker, max_rows: int) -> FloatArray | None:
    """The matrix of a well-formed request (instances all objects with exactly the features, or
    all lists of F values; valid values), or None for anything else."""
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
    forms = set(map(type, instances))
    if forms not in ({dict}, {list}):
        return None
    if set(map(len, instances)) != {checker.width}:
        return None
    if forms == {dict}:
        try:
            # Each instance has exactly F keys, so finding every feature means no other key.
            rows: Any = list(map(checker.getter, instances))
        except KeyError:
            return None
    else:
        rows = instances
    if len(rows) == 1:
        return checker.row(rows[0])
    if checker.numeric_only:
        return checker.rows(rows) if numbers_only(chain.from_iterable(rows)) else None
    return checker.columns(list(zip(*rows, strict=True)))


def _exact(body: Any, checker: Checker, limits: Limits) -> FloatArray:
    """The reference reader: the matrix, or every problem in the request with its location."""
    if type(body) is not dict:
        raise invalid((), f"body must be a JSON object, got {describe_type(body)}")
    if "instances" in body and "inputs" in body:
        raise invalid(("inputs",), "send instances or inputs, not both")
    key = "instances" if "instances" in body or "inputs" not in body else "inputs"
    if key not in body:
        raise invalid(("instances",), "missing; send a list of instances")
    instances = body[key]
    if type(instances) is not list:
        raise invalid((key,), f"must be a list of instances, got {describe_type(instances)}")
    check_row_count(len(instances), limits.max_rows)
    if not instances:
        raise invalid((key,), "no instances; send at least one")

    names = checker.names
    width = checker.width
    problems = Problems(limits.max_details)
    form = type(instances[0]) if type(instances[0]) in FORMS else dict
    good: list[int] = []
    for i, instance in enumerate(instances):
        kind = type(instance)
        if kind is not form:
            what = FORMS.get(kind, describe_type(instance))
            problems.add(
                (key, i),
                f"is {what} but instance 0 is {FORMS[form]}; use one form for every instance",
            )
        elif form is dict and instance.keys() != checker.name_set:
            for name in names:
                if name not in instance:
                    problems.add((key, i, name), "missing feature")
            for k in instance:
                if k not in checker.name_set:
                    problems.add((key, i, k), f"unknown feature; expected {', '.join(names)}")
        elif form is list and len(instance) != width:
            problems.add(
                (key, i),
                f"has {len(instance)} values; expected {width} in order {', '.join(names)}",
            )
        else:
            good.append(i)

    rows = instances if len(good) == len(instances) else [instances[i] for i in good]
    fields: tuple[str | int, ...] = names if form is dict else tuple(range(width))
    columns = []
    for j, field in enumerate(fields):
        values = checker.column(j, [row[field] for row in rows], _loc(key, good, field), problems)
        if len(good) != len(instances):
            full = np.full(len(instances), np.nan)
            full[good] = values
            values = full
        columns.append(values)
    return checker.finish(columns, problems)


def _loc(key: str, good: list[int], field: str | int) -> Callable[[int], Loc]:
    def where(k: int) -> Loc:
        return (key, good[k], field)

    return where
