"""Each codec's fast path gives exactly what its reference reader gives.

`decode` tries the fast path and falls back to the exact reader; for random bodies near the
common case (valid rows, then values out of range, wrong types, booleans, huge numbers, missing,
extra or reordered keys, ragged rows, mixed forms, odd shapes and datatypes), `decode` and the
exact reader return the same matrix (values, shape, dtype, C order) or raise the same error
(class, message and every detail).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.http.codecs.support import CHECKER, SCHEMA

from ml_service.errors import ServiceError
from ml_service.http.codecs import kserve_v1, open_inference, original
from ml_service.http.codecs.base import Limits

NAMES = list(SCHEMA.names)
SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Values: mostly valid for their feature, sometimes at or beyond a bound, or not numbers.
odd_values = st.one_of(
    st.sampled_from([0, 1, 2, 0.0, 1.0, -0.0, 5e-324, 100, 100.0, 100.00000000000001, 10000]),
    st.sampled_from([-1, 400, 400.1, 10001, 1e308, -1e308, 10**400, -(10**30), 2**64, 2**63]),
    st.sampled_from([True, False, None, "6.5", [6.5], {"v": 1}, float("inf"), float("nan")]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
)


def valid_value(name: str) -> st.SearchStrategy[Any]:
    feature = SCHEMA.features[NAMES.index(name)]
    if feature.allowed is not None:
        return st.sampled_from([*feature.allowed, *(int(v) for v in feature.allowed)])
    low = feature.train_min if feature.train_min is not None else 1.0
    high = feature.train_max if feature.train_max is not None else 50.0
    return st.one_of(st.floats(low, high), st.integers(int(low) + 1, int(high)))


@st.composite
def rows(draw: st.DrawFn, max_rows: int = 4) -> list[dict[str, Any]]:
    """Valid rows; in about half the tables, one or two values replaced by odd ones."""
    count = draw(st.integers(0, max_rows))
    table = [{n: draw(valid_value(n)) for n in NAMES} for _ in range(count)]
    if table and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 2))):
            row = draw(st.sampled_from(table))
            row[draw(st.sampled_from(NAMES))] = draw(odd_values)
    return table


@st.composite
def shuffled(draw: st.DrawFn, mapping: dict[Any, Any]) -> dict[Any, Any]:
    items = list(mapping.items())
    return dict(draw(st.permutations(items))) if items else {}


@st.composite
def damaged(draw: st.DrawFn, mapping: dict[Any, Any], keys: list[Any]) -> dict[Any, Any]:
    """Sometimes drop a key, add an unknown one, or replace a value with anything."""
    out = dict(mapping)
    action = draw(st.sampled_from(["none"] * 12 + ["drop", "add", "replace"]))
    if action == "drop" and out:
        del out[draw(st.sampled_from(list(out)))]
    elif action == "add":
        out[draw(st.sampled_from(["ZN", "extra", *keys]))] = draw(odd_values)
    elif action == "replace" and out:
        out[draw(st.sampled_from(list(out)))] = draw(odd_values)
    return out


CODECS = {
    original: original.Original(),
    kserve_v1: kserve_v1.KServeV1(),
    open_inference: open_inference.OpenInference(),
}


def _decode(module: Any, body: Any, limit: int) -> Any:
    rows, meta = CODECS[module].decode(body, CHECKER, Limits(limit))
    return rows if meta is None else (rows, meta)


def _exact(module: Any, body: Any, limit: int) -> Any:
    return module._exact(body, CHECKER, Limits(limit))


def same(parse: Callable[[], Any], exact: Callable[[], Any]) -> None:
    def run(call: Callable[[], Any]) -> tuple[str, Any]:
        try:
            result = call()
        except ServiceError as exc:
            return "error", (type(exc).__name__, exc.message, exc.details)
        matrix = result[0] if isinstance(result, tuple) else result
        assert matrix.dtype == np.float64
        assert matrix.flags.c_contiguous
        rest = result[1:] if isinstance(result, tuple) else ()
        return "value", (matrix.shape, matrix.tobytes(), rest)

    assert run(parse) == run(exact)


@SETTINGS
@given(rows(), st.sampled_from(["dict", "list"]), st.data(), st.integers(1, 5))
def test_original(table: list[dict[str, Any]], form: str, data: st.DataObject, limit: int) -> None:
    keys = [str(i) for i in range(len(table))]
    body: dict[str, Any] = {}
    for name in NAMES:
        if form == "dict":
            column = {k: row[name] for k, row in zip(keys, table, strict=True)}
            column = data.draw(damaged(data.draw(shuffled(column)), keys))
        else:
            column = [row[name] for row in table]
            if data.draw(st.integers(0, 20)) == 0 and column:
                column = column[:-1]
        body[name] = column
        if data.draw(st.integers(0, 40)) == 0:
            body[name] = data.draw(st.sampled_from([[1.0], {"0": 1.0}, 5, None, "x"]))
    body = data.draw(damaged(data.draw(shuffled(body)), NAMES))
    same(
        lambda: _decode(original, body, limit),
        lambda: _exact(original, body, limit),
    )


@SETTINGS
@given(
    rows(),
    st.sampled_from(["instances", "inputs", "both", "neither"]),
    st.data(),
    st.integers(1, 5),
)
def test_kserve_v1(table: list[dict[str, Any]], key: str, data: st.DataObject, limit: int) -> None:
    instances: list[Any] = []
    request_form = data.draw(st.sampled_from(["dict", "list"]))
    for row in table:
        form = request_form
        if data.draw(st.integers(0, 10)) == 0:
            form = data.draw(st.sampled_from(["dict", "list", "odd"]))
        if form == "dict":
            instances.append(data.draw(damaged(data.draw(shuffled(row)), NAMES)))
        elif form == "list":
            values = [row[n] for n in NAMES]
            if data.draw(st.integers(0, 10)) == 0:
                values = values[: data.draw(st.integers(0, len(values) + 1))]
            instances.append(values)
        else:
            instances.append(data.draw(odd_values))
    if key == "both":
        body: Any = {"instances": instances, "inputs": instances}
    elif key == "neither":
        body = {"rows": instances}
    else:
        body = {key: instances, **data.draw(st.sampled_from([{}, {"parameters": {}}]))}
    if data.draw(st.integers(0, 15)) == 0:
        body = instances
    same(
        lambda: _decode(kserve_v1, body, limit),
        lambda: _exact(kserve_v1, body, limit),
    )


@SETTINGS
@given(rows(), st.data(), st.integers(1, 5))
def test_open_inference(table: list[dict[str, Any]], data: st.DataObject, limit: int) -> None:
    matrix = [[row[n] for n in NAMES] for row in table]
    form = data.draw(st.sampled_from(["flat", "nested", "features"]))
    datatype = data.draw(
        st.sampled_from(["FP64", "FP64", "FP32", "FP16", "INT64", "UINT8", "BOOL", "fp64", 7])
    )
    if form == "features":
        inputs: list[Any] = [
            {
                "name": n,
                "shape": [len(table)],
                "datatype": datatype,
                "data": [row[n] for row in table],
            }
            for n in NAMES
        ]
    else:
        shape: Any = [len(table), len(NAMES)]
        if data.draw(st.integers(0, 6)) == 0:
            shape = data.draw(
                st.sampled_from(
                    [[len(table)], [len(table), 5], [True, 6], "x", [len(table) + 1, 6], [-1, 6]]
                )
            )
        flat = [v for row in matrix for v in row]
        inputs = [
            {
                "name": data.draw(st.sampled_from(["input", "RM", "x"])),
                "shape": shape,
                "datatype": datatype,
                "data": flat if form == "flat" else matrix,
            }
        ]
    tensor = inputs[0]
    if data.draw(st.integers(0, 6)) == 0:
        tensor.update(
            data.draw(
                st.sampled_from(
                    [
                        {"parameters": {}},
                        {"parameters": 1},
                        {"extra": 1},
                        {"data": "x"},
                        {"name": 3},
                    ]
                )
            )
        )
    body: Any = {"inputs": inputs}
    extra = data.draw(
        st.sampled_from(
            [
                {},
                {},
                {"id": "r-1"},
                {"id": 5},
                {"parameters": {}},
                {"outputs": [{"name": "predict"}]},
                {"outputs": [{"name": "other"}]},
                {"inputs": []},
                {"inputs": [tensor, tensor]},
            ]
        )
    )
    body.update(extra)
    same(
        lambda: _decode(open_inference, body, limit),
        lambda: _exact(open_inference, body, limit),
    )


def test_fast_paths_take_the_common_case() -> None:
    # The equivalence tests above would pass with no fast path at all; this one proves it runs.
    row = {"CHAS": 0, "RM": 6.575, "TAX": 296.0, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 4.98}
    assert original._fast({n: {"0": row[n]} for n in NAMES}, CHECKER, 10) is not None
    assert original._fast({n: [row[n]] * 3 for n in NAMES}, CHECKER, 10) is not None
    assert kserve_v1._fast({"instances": [row, row]}, CHECKER, 10) is not None
    assert kserve_v1._fast({"inputs": [list(row.values())]}, CHECKER, 10) is not None
    v2 = {
        "inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": list(row.values())}]
    }
    assert open_inference._fast(v2, CHECKER, 10) is not None
    v2["inputs"][0]["data"] = [list(row.values())]
    assert open_inference._fast(v2, CHECKER, 10) is not None


def test_prepared_bounds_match_feature_accepts() -> None:
    # Exclusive bounds become the next double: 0 is refused for RM, the smallest double is not.
    prep = CHECKER
    base = np.array([[0.0, 6.5, 296.0, 15.3, 396.9, 4.98]])
    for j, feature in enumerate(SCHEMA.features):
        for candidate in (
            feature.min,
            feature.max,
            np.nextafter(feature.min, np.inf),
            np.nextafter(feature.max, -np.inf),
            np.nextafter(feature.min, -np.inf),
            np.nextafter(feature.max, np.inf),
            0.5,
            -0.0,
        ):
            row = base.copy()
            row[0, j] = candidate
            expected = bool(feature.accepts(row[:, j]).all())
            assert prep.accepts(row) is expected, (feature.name, candidate)


ODD = [
    0,
    1,
    2,
    0.0,
    1.0,
    -0.0,
    5e-324,
    100,
    100.00000000000001,
    10000,
    10001,
    -1,
    400.1,
    1e308,
    10**400,
    -(10**30),
    2**64,
    True,
    False,
    None,
    "6.5",
    [6.5],
    {"v": 1},
    float("inf"),
    float("nan"),
]
BASE = [
    {"CHAS": 0, "RM": 6.575, "TAX": 296.0, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 4.98},
    {"CHAS": 1, "RM": 7.1, "TAX": 242, "PTRATIO": 17.8, "B": 392.8, "LSTAT": 4.03},
]


def bodies(table: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The same rows in every form of every dialect, as (dialect, body)."""
    matrix = [[row[n] for n in NAMES] for row in table]
    return [
        ("original", {n: {str(i): row[n] for i, row in enumerate(table)} for n in NAMES}),
        ("original", {n: [row[n] for row in table] for n in NAMES}),
        ("v1", {"instances": table}),
        ("v1", {"inputs": matrix}),
        (
            "v2",
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [len(table), len(NAMES)],
                        "datatype": "FP64",
                        "data": [v for r in matrix for v in r],
                    }
                ]
            },
        ),
        (
            "v2",
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [len(table), len(NAMES)],
                        "datatype": "FP32",
                        "data": matrix,
                    }
                ],
                "id": "r",
            },
        ),
    ]


READERS = {
    "original": original,
    "v1": kserve_v1,
    "v2": open_inference,
}


def test_every_odd_value_in_every_feature_and_form() -> None:
    for row in range(2):
        for name in NAMES:
            for odd in ODD:
                table = [dict(r) for r in BASE]
                table[row][name] = odd
                for dialect, body in bodies(table):
                    module = READERS[dialect]
                    same(
                        lambda m=module, b=body: _decode(m, b, 5),
                        lambda m=module, b=body: _exact(m, b, 5),
                    )


def test_row_keys_in_another_order_per_feature() -> None:
    body = {n: {"a": BASE[0][n], "b": BASE[1][n]} for n in NAMES}
    body["TAX"] = {"b": BASE[1]["TAX"], "a": BASE[0]["TAX"]}
    rows = _decode(original, body, 5)
    same(lambda: rows, lambda: _exact(original, body, 5))
    body = {"RM": {"b": BASE[1]["RM"], "a": BASE[0]["RM"]}, **body}
    same(lambda: _decode(original, body, 5), lambda: _exact(original, body, 5))
