"""Open Inference Protocol (V2) over JSON: `POST /v2/models/{name}[/versions/{v}]/infer`.

Either one input of shape [N, F] holding whole rows in schema order (any name; numeric schemas
only), or one input per feature, named by it, of shape [N] or [N, 1]: `BYTES` (strings) for a
categorical feature, a numeric datatype for a numeric one, `null` for a missing value of a
nullable feature. `data` may be flat (row-major) or nested. A regressor answers the output
`predict` (FP64); a classifier answers `predict` (its labels: BYTES or INT64) and
`predict_proba` (FP64, [N, K], columns in the order of the output's `parameters.classes`),
both unless the request's `outputs` asks for one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import override

from ml_service.errors import ClientError, Loc
from ml_service.http.codecs.base import (
    Answer,
    Codec,
    Columns,
    Endpoint,
    Limits,
    answer_values,
    label_schema,
    labels,
)
from ml_service.model.checks import Checker, Problems, check_row_count, invalid, numbers_only
from ml_service.model.schema import FloatArray, ModelSchema, describe_type, shown
from ml_service.predictor import Prediction

if TYPE_CHECKING:
    from ml_service.repository.registry import LoadedModel

PREDICT = "predict"
PROBA = "predict_proba"
BYTES = "BYTES"
INTEGER_RANGES = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_TYPES = FLOAT_TYPES | INTEGER_RANGES.keys()
DATATYPES = NUMERIC_TYPES | {BYTES}
NUMERIC_NAMES = "FP16, FP32, FP64, INT8-INT64 or UINT8-UINT64"
_FAST_BODY_KEYS = frozenset({"inputs", "id"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})
_FAST_FEATURE_TYPES = FLOAT_TYPES | {BYTES}
_PLATFORM = "onnxruntime_onnx"


@dataclass(frozen=True, slots=True)
class Meta:
    """What the answer echoes or depends on: the request's `id` and the outputs it asked for."""

    id: str | None = None
    outputs: frozenset[str] | None = None


_NO_META = Meta()


class OpenInference(Codec):
    dialect = "v2"
    tag = "v2"
    endpoints = (
        Endpoint("/v2/models/{name:model}/infer", "Infer (Open Inference Protocol)"),
        Endpoint(
            "/v2/models/{name:model}/versions/{version:version}/infer",
            "Infer with one version (Open Inference Protocol)",
        ),
    )

    @override
    def decode(self, body: Any, checker: Checker, limits: Limits) -> tuple[FloatArray, Meta]:
        rows = _fast(body, checker, limits.max_rows)
        if rows is None:
            return _exact(body, checker, limits)
        request_id = body.get("id")
        return rows, _NO_META if request_id is None else Meta(request_id)

    @override
    def encode(self, prediction: Prediction, model: LoadedModel, meta: Meta) -> Any:
        response: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
        if meta.id is not None:
            response["id"] = meta.id
        values = prediction.values
        if values is not None:
            response["outputs"] = [
                {"name": PREDICT, "datatype": "FP64", "shape": [len(values)], "data": values}
            ]
            return response
        count = len(prediction)
        wanted = meta.outputs
        outputs: list[dict[str, Any]] = []
        if wanted is None or PREDICT in wanted:
            outputs.append(
                {
                    "name": PREDICT,
                    "datatype": label_datatype(model.schema),
                    "shape": [count],
                    "data": labels(prediction, model),
                }
            )
        probabilities = prediction.probabilities
        if (wanted is None or PROBA in wanted) and probabilities is not None:
            outputs.append(
                {
                    "name": PROBA,
                    "datatype": "FP64",
                    "shape": list(probabilities.shape),
                    "parameters": {"classes": model.classes},
                    "data": probabilities.ravel(),
                }
            )
        response["outputs"] = outputs
        return response

    @override
    def request_schema(self, schema: ModelSchema) -> dict[str, Any]:
        tensor = {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "datatype": {"type": "string", "enum": sorted(DATATYPES)},
                "data": {"type": "array", "description": "Flat (row-major) or nested values"},
                "parameters": {"type": "object"},
            },
            "required": ["name", "shape", "datatype", "data"],
        }
        features = "; ".join(
            f"{f.name}: {'BYTES' if f.categorical else 'a numeric datatype'}"
            + (" (null for missing)" if f.nullable else "")
            for f in schema.features
        )
        return {
            "type": "object",
            "description": "One input per feature, named by it, of shape [N] or [N, 1] ("
            f"{features})"
            + (
                f", or one input of shape [N, {len(schema.features)}] in schema order."
                if schema.numeric_only
                else "."
            ),
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": tensor, "minItems": 1},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "enum": output_names(schema)},
                            "parameters": {"type": "object"},
                        },
                        "required": ["name"],
                    },
                },
            },
            "required": ["inputs"],
        }

    @override
    def response_schema(self, schema: ModelSchema) -> dict[str, Any]:
        output = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": output_names(schema)},
                "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "parameters": {"type": "object"},
                "data": {"type": "array", "items": {"anyOf": [label_schema(schema)]}},
            },
            "required": ["name", "datatype", "shape", "data"],
        }
        return {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": output},
            },
            "required": ["model_name", "model_version", "outputs"],
        }

    @override
    def example(self, schema: ModelSchema) -> Any:
        body = super().example(schema)
        # The example sends each value with the datatype its feature takes.
        for tensor, feature in zip(body["inputs"], schema.features, strict=True):
            tensor["datatype"] = BYTES if feature.categorical else "FP64"
        return body

    @override
    def path(self, model: str) -> str:
        return f"/v2/models/{model}/infer"

    @override
    def write(self, columns: Columns) -> Any:
        return {
            "inputs": [
                {
                    "name": name,
                    "shape": [len(values)],
                    "datatype": BYTES if any(isinstance(v, str) for v in values) else "FP64",
                    "data": values,
                }
                for name, values in columns.items()
            ]
        }

    @override
    def claims(self, body: Any) -> bool:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        return (
            isinstance(inputs, list)
            and bool(inputs)
            and all(isinstance(t, dict) and "datatype" in t for t in inputs)
        )

    @override
    def columns(self, body: Any) -> Columns:
        tensors = body["inputs"]
        if len(tensors) == 1 and len(tensors[0].get("shape", [])) == 2:
            shape = tensors[0]["shape"]
            if shape[1] != 1:
                raise ClientError("a single [N, F] tensor cannot be converted: no feature names")
        return {t["name"]: _flatten(list(t["data"])) for t in tensors}

    @override
    def rows(self, body: Any) -> int:
        shape = body["inputs"][0].get("shape") or [0]
        return int(shape[0])

    @override
    def read(self, body: Any) -> Answer:
        outputs = body.get("outputs") if isinstance(body, dict) else None
        if not isinstance(outputs, list):
            raise ClientError("the answer has no outputs")
        by_name = {o.get("name"): o for o in outputs if isinstance(o, dict)}
        predict = by_name.get(PREDICT) or (outputs[0] if outputs else {})
        values = answer_values(predict.get("data") if isinstance(predict, dict) else None, PREDICT)
        probabilities = None
        proba = by_name.get(PROBA)
        if proba is not None:
            classes = [str(c) for c in (proba.get("parameters") or {}).get("classes", [])]
            data = proba.get("data") or []
            width = len(classes)
            probabilities = [
                dict(zip(classes, data[i : i + width], strict=True))
                for i in range(0, len(data), width or 1)
            ]
        return Answer(values, probabilities)


def output_names(schema: ModelSchema) -> list[str]:
    return [PREDICT] if schema.target.classes is None else [PREDICT, PROBA]


def label_datatype(schema: ModelSchema) -> str:
    classes = schema.target.classes or ()
    return "INT64" if all(isinstance(c, int) for c in classes) else BYTES


def model_metadata(model: LoadedModel, versions: list[str]) -> dict[str, Any]:
    """`GET /v2/models/{name}`: inputs (one per feature), outputs, platform and versions."""
    schema = model.schema
    outputs: list[dict[str, Any]]
    if schema.target.classes is None:
        outputs = [{"name": PREDICT, "datatype": "FP64", "shape": [-1]}]
    else:
        outputs = [
            {"name": PREDICT, "datatype": label_datatype(schema), "shape": [-1]},
            {
                "name": PROBA,
                "datatype": "FP64",
                "shape": [-1, len(schema.target.classes)],
                "parameters": {"classes": list(schema.target.classes)},
            },
        ]
    return {
        "name": model.name,
        "versions": versions,
        "platform": _PLATFORM,
        "inputs": [
            {"name": f.name, "datatype": BYTES if f.categorical else "FP64", "shape": [-1]}
            for f in schema.features
        ],
        "outputs": outputs,
    }


def _fast(body: Any, checker: Checker, max_rows: int) -> FloatArray | None:
    """The matrix of a common request: one float tensor [N, F] of numbers (flat or a list per
    row), or one tensor per feature (FP16-64 or BYTES) of flat data; no parameters or outputs;
    valid values. None for anything else."""
    if type(body) is not dict or not body.keys() <= _FAST_BODY_KEYS:
        return None
    if "id" in body and type(body["id"]) is not str:
        return None
    inputs = body.get("inputs")
    if type(inputs) is not list or not inputs:
        return None
    if len(inputs) == 1 and checker.width > 1:
        return _fast_matrix(inputs[0], checker, max_rows)
    return _fast_features(inputs, checker, max_rows)


def _fast_matrix(tensor: Any, checker: Checker, max_rows: int) -> FloatArray | None:
    if type(tensor) is not dict or tensor.keys() != _TENSOR_KEYS or not checker.numeric_only:
        return None
    shape, data, width = tensor["shape"], tensor["data"], checker.width
    if (
        type(tensor["datatype"]) is not str
        or tensor["datatype"] not in FLOAT_TYPES
        or type(tensor["name"]) is not str
        or type(shape) is not list
        or type(data) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or type(shape[1]) is not int
        or shape[1] != width
        or not 0 < shape[0] <= max_rows
    ):
        return None
    rows = shape[0]
    if len(data) == rows * width and numbers_only(data):
        if rows == 1:
            return checker.row(data)
        return checker.rows(data, shape=(rows, width))
    if (
        len(data) == rows
        and set(map(type, data)) == {list}
        and set(map(len, data)) == {width}
        and numbers_only(chain.from_iterable(data))
    ):
        return checker.rows(data)
    return None


def _fast_features(inputs: list[Any], checker: Checker, max_rows: int) -> FloatArray | None:
    if len(inputs) != checker.width:
        return None
    by_name: dict[str, Any] = {}
    count = -1
    for tensor in inputs:
        if type(tensor) is not dict or tensor.keys() != _TENSOR_KEYS:
            return None
        name, shape, data = tensor["name"], tensor["shape"], tensor["data"]
        if type(name) is not str or name in by_name or type(data) is not list:
            return None
        if type(shape) is not list or not 1 <= len(shape) <= 2 or shape[-1:] == [0]:
            return None
        if len(shape) == 2 and shape[1] != 1:
            return None
        if type(shape[0]) is not int or len(data) != shape[0] or count not in (-1, shape[0]):
            return None
        count = shape[0]
        by_name[name] = tensor
    if not 0 < count <= max_rows or by_name.keys() != checker.name_set:
        return None
    columns = []
    for feature in checker.features:
        tensor = by_name[feature.name]
        datatype = tensor["datatype"]
        if type(datatype) is not str or datatype not in _FAST_FEATURE_TYPES:
            return None
        if (datatype == BYTES) is not feature.categorical:
            return None
        columns.append(tensor["data"])
    if count == 1:
        return checker.row([column[0] for column in columns])
    return checker.columns(columns)


class _Tensor:
    __slots__ = ("datatype", "faulty", "flat", "index", "name", "nested", "shape")

    def __init__(
        self, index: int, name: str, shape: list[int], datatype: str, flat: list[Any], nested: bool
    ) -> None:
        self.index, self.name, self.shape, self.datatype = index, name, shape, datatype
        self.flat, self.nested = flat, nested
        self.faulty = False

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 0

    def loc(self, k: int) -> Loc:
        """Path of the k-th value (row-major) inside this tensor's `data`."""
        if not self.nested:
            return ("inputs", self.index, "data", k)
        return ("inputs", self.index, "data", *(int(x) for x in np.unravel_index(k, self.shape)))

    def whole_number_faults(self, problems: Problems) -> set[int]:
        """Values an integer datatype cannot hold (fractional or out of its range), reported;
        their positions, for the value checks to skip."""
        bounds = INTEGER_RANGES.get(self.datatype)
        if bounds is None:
            return set()
        faults: set[int] = set()
        for k, value in enumerate(self.flat):
            if type(value) is not int and type(value) is not float:
                continue
            if type(value) is float and not value.is_integer():
                why = "a whole number"
            elif not bounds[0] <= value <= bounds[1]:
                why = f"within {bounds[0]}..{bounds[1]}"
            else:
                continue
            problems.add(self.loc(k), f"{self.datatype} data must be {why}, got {shown(value)}")
            faults.add(k)
        return faults


def _exact(body: Any, checker: Checker, limits: Limits) -> tuple[FloatArray, Meta]:
    """The reference reader: the matrix and what the answer needs, or every problem."""
    if type(body) is not dict:
        raise invalid((), f"body must be a JSON object, got {describe_type(body)}")
    problems = Problems(limits.max_details)
    request_id = body.get("id")
    if "id" in body and type(request_id) is not str:
        problems.add(("id",), f"must be a string, got {describe_type(request_id)}")
    _check_parameters(body, (), problems)
    outputs = _check_outputs(body.get("outputs"), checker.schema, problems)

    inputs = body.get("inputs")
    if type(inputs) is not list or not inputs:
        what = "missing" if inputs is None else f"got {describe_type(inputs)}"
        if inputs == []:
            what = "empty"
        problems.add(("inputs",), f"must be a non-empty list of tensors; {what}")
        raise problems.error()

    tensors = [_tensor(i, raw, problems) for i, raw in enumerate(inputs)]
    shaped = [t for t in tensors if t is not None]
    if shaped:
        check_row_count(max(t.rows for t in shaped), limits.max_rows)
    names = checker.names
    width = checker.width
    meta = Meta(request_id if type(request_id) is str else None, outputs)
    if len(inputs) == 1 and shaped:
        single = shaped[0]
        if (
            len(single.shape) == 2
            and single.shape[1] == width
            and (width > 1 or single.name not in checker.name_set)
        ):
            return _matrix_form(checker, single, problems), meta
        if len(single.shape) >= 2 and not (
            len(single.shape) == 2 and single.shape[1] == 1 and single.name in checker.name_set
        ):
            problems.add(
                ("inputs", 0, "shape"),
                f"must be [N, {width}] (rows of the features in schema order: "
                f"{', '.join(names)}), or [N] for one input per feature; got {single.shape}",
            )
            raise problems.error()
    return _feature_form(checker, tensors, problems), meta


def _tensor(i: int, raw: Any, problems: Problems) -> _Tensor | None:
    """Tensor i of the request with every fault in it reported; None unless usable."""
    where: Loc = ("inputs", i)
    if type(raw) is not dict:
        problems.add(where, f"must be a tensor object, got {describe_type(raw)}")
        return None
    before = problems.total
    name, shape, datatype, data = (raw.get(k) for k in ("name", "shape", "datatype", "data"))
    for key, value, kind in (
        ("name", name, str),
        ("shape", shape, list),
        ("datatype", datatype, str),
        ("data", data, list),
    ):
        if key not in raw:
            problems.add((*where, key), "missing")
        elif type(value) is not kind:
            what = "a string" if kind is str else "a list"
            problems.add((*where, key), f"must be {what}, got {describe_type(value)}")
    _check_parameters(raw, where, problems)
    shape_ok = type(shape) is list and all(type(d) is int and d >= 0 for d in shape)
    if type(shape) is list and not shape_ok:
        problems.add((*where, "shape"), "must list non-negative whole numbers")
    if type(datatype) is str and datatype not in DATATYPES:
        hint = " (booleans cannot be model inputs)" if datatype == "BOOL" else ""
        problems.add(
            (*where, "datatype"),
            f"{datatype!r} is not supported{hint}; use {NUMERIC_NAMES}, or BYTES for text",
        )
    flat: list[Any] = []
    nested = False
    if shape_ok and type(data) is list:
        nested = any(type(v) is list for v in data)
        flat = _flatten(data) if nested else data
        expected = math.prod(shape)  # type: ignore[arg-type]
        if len(flat) != expected:
            problems.add(
                (*where, "data"), f"holds {len(flat)} values but shape {shape} needs {expected}"
            )
    if type(name) is not str or not shape_ok:
        return None
    # A faulty tensor still takes part in the shape checks across tensors.
    tensor = _Tensor(i, name, shape, datatype, flat, nested)  # type: ignore[arg-type]
    tensor.faulty = problems.total > before
    return tensor


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


def _matrix_form(checker: Checker, tensor: _Tensor, problems: Problems) -> FloatArray:
    """The rows of one [N, F] tensor (numeric schemas only)."""
    if not checker.numeric_only:
        text = ", ".join(f.name for f in checker.features if f.categorical)
        problems.add(
            ("inputs", 0),
            f"this model has categorical features ({text}): send one input per feature, "
            "named by it, with BYTES for the categorical ones",
        )
        raise problems.error()
    if tensor.datatype == BYTES:
        problems.add(
            ("inputs", 0, "datatype"), f"BYTES is for text; send the rows as {NUMERIC_NAMES}"
        )
    if tensor.shape[0] == 0:
        problems.add(("inputs", 0, "shape"), "no rows; send at least one")
    if tensor.faulty or tensor.datatype == BYTES or tensor.shape[0] == 0:
        raise problems.error()
    width = tensor.shape[1]
    skip = tensor.whole_number_faults(problems)

    def loc(j: int) -> Callable[[int], Loc]:
        return lambda i: tensor.loc(i * width + j)

    columns = [
        checker.column(
            j, tensor.flat[j::width], loc(j), problems, {k // width for k in skip if k % width == j}
        )
        for j in range(width)
    ]
    return checker.finish(columns, problems)


def _feature_form(
    checker: Checker, tensors: list[_Tensor | None], problems: Problems
) -> FloatArray:
    """The rows of one tensor per feature; `None` stands for an input too broken to name."""
    names = checker.names
    before = problems.total
    by_name: dict[str, _Tensor] = {}
    for t in tensors:
        if t is None:
            continue
        where = ("inputs", t.index)
        if t.name not in checker.name_set:
            problems.add(
                (*where, "name"),
                f"unknown input {t.name!r}; send one input per feature ({', '.join(names)})"
                + (f" or one input of shape [N, {len(names)}]" if checker.numeric_only else ""),
            )
            continue
        if t.name in by_name:
            problems.add((*where, "name"), f"input {t.name!r} is sent twice")
            continue
        feature = checker.features[names.index(t.name)]
        if not (len(t.shape) == 1 or (len(t.shape) == 2 and t.shape[1] == 1)):
            problems.add(
                (*where, "shape"), f"must be [N] or [N, 1] for a per-feature input, got {t.shape}"
            )
        if feature.categorical and t.datatype != BYTES:
            problems.add(
                (*where, "datatype"),
                f"{t.name} is categorical: send its values as strings with datatype BYTES",
            )
        elif not feature.categorical and t.datatype == BYTES:
            problems.add(
                (*where, "datatype"),
                f"{t.name} is numeric: send it as {NUMERIC_NAMES}, not BYTES",
            )
        by_name[t.name] = t
    if None not in tensors:
        for name in names:
            if name not in by_name:
                problems.add(("inputs",), f"missing input for feature {name}")
    if problems.total > before or any(t is None or t.faulty for t in tensors):
        raise problems.error()
    first = by_name[names[0]]
    rows = first.shape[0]
    for name in names[1:]:
        t = by_name[name]
        if t.shape[0] != rows:
            problems.add(
                ("inputs", t.index, "shape"), f"has {t.shape[0]} rows but {names[0]} has {rows}"
            )
    if rows == 0:
        problems.add(("inputs", first.index, "shape"), "no rows; send at least one")
    if problems.total > before:
        raise problems.error()
    columns = []
    for j, name in enumerate(names):
        t = by_name[name]
        skip = t.whole_number_faults(problems)
        columns.append(checker.column(j, t.flat, t.loc, problems, skip))
    return checker.finish(columns, problems)


def _check_parameters(obj: dict[str, Any], where: Loc, problems: Problems) -> None:
    if "parameters" in obj and type(obj["parameters"]) is not dict:
        problems.add((*where, "parameters"), "must be an object")


def _check_outputs(outputs: Any, schema: ModelSchema, problems: Problems) -> frozenset[str] | None:
    """The outputs a request asks for (None: all), each checked against the model's."""
    if outputs is None:
        return None
    if type(outputs) is not list:
        problems.add(("outputs",), "must be a list of requested outputs")
        return None
    known = output_names(schema)
    wanted: set[str] = set()
    for i, requested in enumerate(outputs):
        if type(requested) is not dict or type(requested.get("name")) is not str:
            problems.add(("outputs", i), "must be an object with a name")
        elif requested["name"] not in known:
            choices = " or ".join(repr(k) for k in known)
            problems.add(
                ("outputs", i, "name"),
                f"unknown output {requested['name']!r}; this model has {choices}",
            )
        else:
            wanted.add(requested["name"])
            _check_parameters(requested, ("outputs", i), problems)
    return frozenset(wanted) if wanted else None
