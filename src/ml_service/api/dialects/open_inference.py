"""Open Inference Protocol (V2) over JSON: `POST /v2/models/{name}[/versions/{v}]/infer`.

Either one input of shape [N, F] holding whole rows in schema order (any name), or one input per
feature, named by it, of shape [N] or [N, 1]. `data` may be flat (row-major) or nested.
"""

from __future__ import annotations

import math
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

OUTPUT = "predict"
INTEGER_RANGES = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = FLOAT_TYPES | INTEGER_RANGES.keys()
_FAST_BODY_KEYS = frozenset({"inputs", "id"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})


def parse(body: Any, schema: ModelSchema, max_rows: int) -> tuple[FloatArray, str | None]:
    """The request's rows as a checked matrix, and its `id` (echoed in the response)."""
    rows = _fast(body, schema, max_rows)
    if rows is None:
        return parse_exact(body, schema, max_rows)
    return rows, body.get("id")


def _fast(body: Any, schema: ModelSchema, max_rows: int) -> FloatArray | None:
    """The matrix of the common request: one float tensor of shape [N, F] (flat or one list per
    row), no parameters or outputs, numbers in range; None for anything else."""
    if type(body) is not dict or not body.keys() <= _FAST_BODY_KEYS:
        return None
    if "id" in body and type(body["id"]) is not str:
        return None
    inputs = body.get("inputs")
    if type(inputs) is not list or len(inputs) != 1:
        return None
    tensor = inputs[0]
    if type(tensor) is not dict or tensor.keys() != _TENSOR_KEYS:
        return None
    prep = prepared(schema)
    shape, data = tensor["shape"], tensor["data"]
    if (
        type(tensor["datatype"]) is not str
        or tensor["datatype"] not in FLOAT_TYPES
        or type(tensor["name"]) is not str
        or type(shape) is not list
        or type(data) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or type(shape[1]) is not int
        or shape[1] != prep.width
        or not 0 < shape[0] <= max_rows
        or (prep.width == 1 and tensor["name"] in prep.name_set)
    ):
        return None
    rows = shape[0]
    if len(data) == rows * prep.width and numbers_only(data):
        if rows == 1:
            return prep.row(data)
        return prep.matrix(data, shape=(rows, prep.width))
    if (
        len(data) == rows
        and set(map(type, data)) == {list}
        and set(map(len, data)) == {prep.width}
        and numbers_only(chain.from_iterable(data))
    ):
        return prep.matrix(data)
    return None


def parse_exact(body: Any, schema: ModelSchema, max_rows: int) -> tuple[FloatArray, str | None]:
    """The reference reader: the matrix and id, or every problem with its location."""
    if type(body) is not dict:
        raise invalid([Problem((), f"body must be a JSON object, got {describe_type(body)}")])
    problems: list[Problem] = []
    request_id = body.get("id")
    if "id" in body and type(request_id) is not str:
        problems.append(Problem(("id",), f"must be a string, got {describe_type(request_id)}"))
    _check_parameters(body, (), problems)
    _check_outputs(body.get("outputs"), problems)

    inputs = body.get("inputs")
    if type(inputs) is not list or not inputs:
        what = "missing" if inputs is None else f"got {describe_type(inputs)}"
        if inputs == []:
            what = "empty"
        problems.append(Problem(("inputs",), f"must be a non-empty list of tensors; {what}"))
        raise invalid(problems)

    tensors = [_tensor(i, raw, problems) for i, raw in enumerate(inputs)]
    good = [t for t in tensors if t is not None]
    if good:
        check_row_count(max(t.shape[0] if t.shape else 0 for t in good), max_rows)
    if len(good) != len(tensors):
        raise invalid(problems)
    width = len(schema.names)
    single = good[0]
    if (
        len(good) == 1
        and len(single.shape) == 2
        and single.shape[1] == width
        and (width > 1 or single.name not in schema.names)
    ):
        return _matrix_form(schema, single, problems), request_id
    return _feature_form(schema, good, problems), request_id


class _Tensor:
    __slots__ = ("datatype", "flat", "index", "name", "nested", "shape")

    def __init__(
        self, index: int, name: str, shape: list[int], datatype: str, flat: list[Any], nested: bool
    ) -> None:
        self.index, self.name, self.shape, self.datatype = index, name, shape, datatype
        self.flat, self.nested = flat, nested

    def loc(self, k: int) -> Loc:
        """Path of the k-th value (row-major) inside this tensor's `data`."""
        if not self.nested:
            return ("inputs", self.index, "data", k)
        return ("inputs", self.index, "data", *(int(x) for x in np.unravel_index(k, self.shape)))

    def floats(self, problems: list[Problem]) -> FloatArray:
        values = to_floats(self.flat, self.loc, problems)
        bounds = INTEGER_RANGES.get(self.datatype)
        if bounds is not None:
            finite = np.isfinite(values)
            fractional = finite & (np.floor(values) != values)
            outside = finite & ((values < bounds[0]) | (values > bounds[1]))
            for k in np.flatnonzero(fractional | outside).tolist():
                why = "a whole number" if fractional[k] else f"within {bounds[0]}..{bounds[1]}"
                problems.append(
                    Problem(
                        self.loc(k), f"{self.datatype} data must be {why}, got {self.flat[k]!r}"
                    )
                )
                values[k] = math.nan
        return values


def _tensor(i: int, raw: Any, problems: list[Problem]) -> _Tensor | None:
    where: Loc = ("inputs", i)
    if type(raw) is not dict:
        problems.append(Problem(where, f"must be a tensor object, got {describe_type(raw)}"))
        return None
    before = len(problems)
    name, shape, datatype, data = (raw.get(k) for k in ("name", "shape", "datatype", "data"))
    for key, value, kind in (
        ("name", name, str),
        ("shape", shape, list),
        ("datatype", datatype, str),
        ("data", data, list),
    ):
        if key not in raw:
            problems.append(Problem((*where, key), "missing"))
        elif type(value) is not kind:
            problems.append(
                Problem(
                    (*where, key),
                    f"must be {'a string' if kind is str else 'a list'}"
                    f", got {describe_type(value)}",
                )
            )
    _check_parameters(raw, where, problems)
    if type(shape) is list and not all(type(d) is int and d >= 0 for d in shape):
        problems.append(Problem((*where, "shape"), "must list non-negative whole numbers"))
    if type(datatype) is str and datatype not in DATATYPES:
        hint = (
            " (booleans and bytes cannot be model inputs)" if datatype in ("BOOL", "BYTES") else ""
        )
        problems.append(
            Problem(
                (*where, "datatype"),
                f"{datatype!r} is not supported{hint}; use "
                "FP16, FP32, FP64, INT8-INT64 or UINT8-UINT64",
            )
        )
    if len(problems) > before or not (
        type(name) is str and type(shape) is list and type(datatype) is str and type(data) is list
    ):
        return None
    nested = any(type(v) is list for v in data)
    flat = _flatten(data) if nested else data
    expected = math.prod(shape)
    if len(flat) != expected:
        problems.append(
            Problem(
                (*where, "data"), f"holds {len(flat)} values but shape {shape} needs {expected}"
            )
        )
        return None
    return _Tensor(i, name, shape, datatype, flat, nested)


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _matrix_form(schema: ModelSchema, tensor: _Tensor, problems: list[Problem]) -> FloatArray:
    rows = tensor.shape[0]
    if rows == 0:
        raise invalid([*problems, Problem(("inputs", 0, "shape"), "no rows; send at least one")])
    width = tensor.shape[1]
    values = tensor.floats(problems).reshape(rows, width)
    columns = [values[:, j] for j in range(width)]
    return finish(schema, columns, problems, lambda i, j: tensor.loc(i * width + j))


def _feature_form(
    schema: ModelSchema, tensors: list[_Tensor], problems: list[Problem]
) -> FloatArray:
    names = schema.names
    by_name: dict[str, _Tensor] = {}
    for t in tensors:
        if t.name not in names:
            problems.append(
                Problem(
                    ("inputs", t.index, "name"),
                    f"unknown input {t.name!r}; send "
                    f"one input per feature ({', '.join(names)}) or one input "
                    f"of shape [N, {len(names)}]",
                )
            )
        elif t.name in by_name:
            problems.append(Problem(("inputs", t.index, "name"), f"input {t.name!r} is sent twice"))
        elif not (len(t.shape) == 1 or (len(t.shape) == 2 and t.shape[1] == 1)):
            problems.append(
                Problem(
                    ("inputs", t.index, "shape"),
                    f"must be [N] or [N, 1] for a per-feature input, got {t.shape}",
                )
            )
        else:
            by_name[t.name] = t
    problems.extend(
        Problem(("inputs",), f"missing input for feature {n}")
        for n in names
        if n not in by_name and not any(t.name == n for t in tensors)
    )
    if problems:
        raise invalid(problems)
    first = by_name[names[0]]
    rows = first.shape[0]
    for name in names[1:]:
        t = by_name[name]
        if t.shape[0] != rows:
            problems.append(
                Problem(
                    ("inputs", t.index, "shape"), f"has {t.shape[0]} rows but {names[0]} has {rows}"
                )
            )
    if rows == 0:
        problems.append(Problem(("inputs", first.index, "shape"), "no rows; send at least one"))
    if problems:
        raise invalid(problems)
    columns = [by_name[name].floats(problems) for name in names]
    return finish(schema, columns, problems, lambda i, j: by_name[names[j]].loc(i))


def _check_parameters(obj: dict[str, Any], where: Loc, problems: list[Problem]) -> None:
    if "parameters" in obj and type(obj["parameters"]) is not dict:
        problems.append(Problem((*where, "parameters"), "must be an object"))


def _check_outputs(outputs: Any, problems: list[Problem]) -> None:
    if outputs is None:
        return
    if type(outputs) is not list:
        problems.append(Problem(("outputs",), "must be a list of requested outputs"))
        return
    for i, requested in enumerate(outputs):
        if type(requested) is not dict or type(requested.get("name")) is not str:
            problems.append(Problem(("outputs", i), "must be an object with a name"))
        elif requested["name"] != OUTPUT:
            problems.append(
                Problem(
                    ("outputs", i, "name"),
                    f"unknown output {requested['name']!r}; this model has {OUTPUT!r}",
                )
            )
        else:
            _check_parameters(requested, ("outputs", i), problems)


def render(
    predictions: FloatArray, name: str, version: str, request_id: str | None
) -> dict[str, Any]:
    response: dict[str, Any] = {"model_name": name, "model_version": version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = [
        {"name": OUTPUT, "datatype": "FP64", "shape": [len(predictions)], "data": predictions}
    ]
    return response
