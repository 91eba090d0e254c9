"""The three request dialects: accepted forms, row order, and every schema rule with its loc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_service.api.dialects import kserve_v1, open_inference, original
from ml_service.errors import InvalidInput, PayloadTooLarge
from ml_service.model.schema import ModelSchema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ModelSchema.from_dict(json.loads((ROOT / "data" / "housing.schema.json").read_text()))
NAMES = SCHEMA.names
ROW = {"CHAS": 0, "RM": 6.575, "TAX": 296.0, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 4.98}
ROW2 = {"CHAS": 1, "RM": 7.1, "TAX": 242.0, "PTRATIO": 17.8, "B": 392.8, "LSTAT": 4.03}
MATRIX = np.array([[ROW[n] for n in NAMES], [ROW2[n] for n in NAMES]])


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[tuple[Any, ...], str]]:
    return [(p.loc, p.msg) for p in exc.value.details]


def locs(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[Any, ...]]:
    return [p.loc for p in exc.value.details]


# --- original dialect


def test_original_columns_orient() -> None:
    body = {n: {"0": ROW[n], "1": ROW2[n]} for n in NAMES}
    np.testing.assert_array_equal(original.parse(body, SCHEMA, 100), MATRIX)


def test_original_lists() -> None:
    body = {n: [ROW[n], ROW2[n]] for n in NAMES}
    np.testing.assert_array_equal(original.parse(body, SCHEMA, 100), MATRIX)


def test_original_rows_follow_the_first_features_key_order_not_sorted() -> None:
    body: dict[str, Any] = {"RM": {"b": ROW2["RM"], "a": ROW["RM"]}}
    for n in NAMES:
        if n != "RM":
            body[n] = {"a": ROW[n], "b": ROW2[n]}
    np.testing.assert_array_equal(original.parse(body, SCHEMA, 100), MATRIX[::-1])


def test_original_reports_every_problem_at_once() -> None:
    body: dict[str, Any] = {n: {"0": ROW[n], "1": ROW2[n]} for n in NAMES}
    body["CHAS"]["1"] = 2
    body["RM"]["0"] = "six"
    body["TAX"]["1"] = -1
    body["B"]["0"] = None
    del body["LSTAT"]
    body["ZN"] = {"0": 1}
    with pytest.raises(InvalidInput) as exc:
        original.parse(body, SCHEMA, 100)
    found = problems(exc)
    assert ("ZN",) in locs(exc)
    assert (("LSTAT",), "missing feature") in found
    assert (("CHAS", "1"), "CHAS must be 0 or 1, got 2") in found
    assert (("RM", "0"), "must be a number, got a string") in found
    assert (("TAX", "1"), "TAX must be >= 0 and <= 10000, got -1") in found
    assert (("B", "0"), "must be a number, got null") in found
    assert len(found) == 6


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be a number, got a boolean"),
        ("6.5", "must be a number, got a string"),
        (None, "must be a number, got null"),
        ([6.5], "must be a number, got a list"),
        ({"v": 6.5}, "must be a number, got an object"),
        (float("inf"), "too large for a double"),
        (10**400, "too large for a double"),
        (0, "RM must be > 0 and <= 100, got 0"),
        (100.0001, "RM must be > 0 and <= 100, got 100.0001"),
    ],
)
def test_original_value_rules(value: Any, message: str) -> None:
    body = {n: {"0": ROW[n]} for n in NAMES}
    body["RM"]["0"] = value
    with pytest.raises(InvalidInput) as exc:
        original.parse(body, SCHEMA, 100)
    [(loc, text)] = problems(exc)
    assert loc == ("RM", "0")
    assert message in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHAS", 0),
        ("CHAS", 1.0),
        ("RM", 100),
        ("RM", 1e-9),
        ("TAX", 0),
        ("TAX", 10000),
        ("PTRATIO", 100),
        ("B", 0),
        ("B", 400),
        ("LSTAT", 0),
        ("LSTAT", 100),
    ],
)
def test_every_value_inside_the_ranges_is_accepted(name: str, value: float) -> None:
    body = {n: [ROW[n]] for n in NAMES}
    body[name] = [value]
    assert original.parse(body, SCHEMA, 100).shape == (1, 6)


def test_original_structure_problems() -> None:
    body: dict[str, Any] = {n: {"0": ROW[n]} for n in NAMES}
    body["RM"] = [6.5]
    body["TAX"] = {"0": 296, "1": 300}
    body["B"] = 3
    with pytest.raises(InvalidInput) as exc:
        original.parse(body, SCHEMA, 100)
    messages = dict(problems(exc))
    assert "use one form for every feature" in messages[("RM",)]
    assert "row keys differ from CHAS's: unexpected ['1']" in messages[("TAX",)]
    assert "got a number" in messages[("B",)] or "got int" in messages[("B",)]


def test_original_zero_rows_and_non_object_bodies() -> None:
    with pytest.raises(InvalidInput) as exc:
        original.parse({n: {} for n in NAMES}, SCHEMA, 100)
    assert problems(exc) == [(("CHAS",), "no rows; send at least one")]
    for body in ([], "x", 1, None):
        with pytest.raises(InvalidInput):
            original.parse(body, SCHEMA, 100)


def test_row_limit_is_413_even_when_values_are_wrong() -> None:
    body = {n: ["bad"] * 11 for n in NAMES}
    with pytest.raises(PayloadTooLarge, match="11 rows; the limit is 10"):
        original.parse(body, SCHEMA, 10)
    assert original.parse({n: [ROW[n]] * 10 for n in NAMES}, SCHEMA, 10).shape == (10, 6)


# --- KServe V1


def test_v1_objects_lists_and_inputs_synonym() -> None:
    objects = {"instances": [ROW, ROW2], "parameters": {"ignored": True}}
    lists = {"inputs": [[ROW[n] for n in NAMES], [ROW2[n] for n in NAMES]]}
    np.testing.assert_array_equal(kserve_v1.parse(objects, SCHEMA, 100), MATRIX)
    np.testing.assert_array_equal(kserve_v1.parse(lists, SCHEMA, 100), MATRIX)


def test_v1_reports_every_problem_with_its_path() -> None:
    bad = dict(ROW2, TAX=-5)
    del bad["B"]
    body = {"instances": [dict(ROW, RM="x"), bad, [1, 2, 3], dict(ROW, LSTAT=101, EXTRA=1)]}
    with pytest.raises(InvalidInput) as exc:
        kserve_v1.parse(body, SCHEMA, 100)
    found = locs(exc)
    assert ("instances", 0, "RM") in found
    assert ("instances", 1, "B") in found
    assert ("instances", 2) in found
    assert ("instances", 3, "EXTRA") in found
    # Value problems of structurally broken instances are not guessed at.
    assert ("instances", 1, "TAX") not in found


def test_v1_range_error_locations() -> None:
    with pytest.raises(InvalidInput) as exc:
        kserve_v1.parse({"instances": [ROW, dict(ROW2, TAX=20000)]}, SCHEMA, 100)
    assert locs(exc) == [("instances", 1, "TAX")]
    with pytest.raises(InvalidInput) as exc:
        kserve_v1.parse({"instances": [[0, 6, 20000, 15, 390, 5]]}, SCHEMA, 100)
    assert locs(exc) == [("instances", 0, 2)]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ("instances",)),
        ({"instances": {}}, ("instances",)),
        ({"instances": []}, ("instances",)),
        ({"instances": [ROW], "inputs": [ROW]}, ("inputs",)),
        ([ROW], ()),
    ],
)
def test_v1_structure(body: Any, loc: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidInput) as exc:
        kserve_v1.parse(body, SCHEMA, 100)
    assert locs(exc) == [loc]


def test_v1_row_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        kserve_v1.parse({"instances": [ROW] * 3}, SCHEMA, 2)


# --- Open Inference Protocol (V2)


def tensor(name: str, shape: list[int], data: list[Any], datatype: str = "FP64") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_v2_matrix_input_flat_and_nested() -> None:
    flat = {"inputs": [tensor("any-name", [2, 6], MATRIX.ravel().tolist())]}
    nested = {"id": "r1", "inputs": [tensor("x", [2, 6], MATRIX.tolist(), "FP32")]}
    rows, ref = open_inference.parse(flat, SCHEMA, 100)
    np.testing.assert_array_equal(rows, MATRIX)
    assert ref is None
    rows, ref = open_inference.parse(nested, SCHEMA, 100)
    np.testing.assert_array_equal(rows, MATRIX)
    assert ref == "r1"


def test_v2_one_input_per_feature_in_any_order() -> None:
    inputs = [tensor(n, [2], [ROW[n], ROW2[n]]) for n in reversed(NAMES)]
    inputs[0] = tensor(inputs[0]["name"], [2, 1], [[ROW["LSTAT"]], [ROW2["LSTAT"]]])
    body = {"inputs": inputs, "parameters": {"a": 1}, "outputs": [{"name": "predict"}]}
    rows, _ = open_inference.parse(body, SCHEMA, 100)
    np.testing.assert_array_equal(rows, MATRIX)


@pytest.mark.parametrize(
    ("datatype", "data", "ok"),
    [
        ("INT64", [0, 6, 296, 15, 396, 5], True),
        ("INT64", [0, 6.5, 296, 15, 396, 5], False),
        ("UINT8", [0, 6, 296, 15, 255, 5], False),
        ("INT8", [0, 6, 100, 15, 100, 5], True),
        ("FP16", [0, 6.5, 296, 15.5, 396, 5], True),
        ("BOOL", [0, 6, 296, 15, 396, 5], False),
        ("BYTES", [0, 6, 296, 15, 396, 5], False),
        ("fp64", [0, 6, 296, 15, 396, 5], False),
    ],
)
def test_v2_datatypes(datatype: str, data: list[Any], ok: bool) -> None:
    body = {"inputs": [tensor("input", [1, 6], data, datatype)]}
    if ok:
        assert open_inference.parse(body, SCHEMA, 100)[0].shape == (1, 6)
    else:
        with pytest.raises(InvalidInput):
            open_inference.parse(body, SCHEMA, 100)


def test_v2_problems_and_paths() -> None:
    body = {
        "id": 5,
        "parameters": [],
        "outputs": [{"name": "probabilities"}],
        "inputs": [
            tensor("input", [2, 6], [0, 6.5, 296, 15.3, 396.9, 4.98, 0, -1, 296, 15.3, 1, 5])
        ],
    }
    with pytest.raises(InvalidInput) as exc:
        open_inference.parse(body, SCHEMA, 100)
    found = locs(exc)
    assert ("id",) in found
    assert ("parameters",) in found
    assert ("outputs", 0, "name") in found
    assert ("inputs", 0, "data", 7) in found


def test_v2_shape_and_count_mismatch() -> None:
    with pytest.raises(InvalidInput) as exc:
        open_inference.parse({"inputs": [tensor("input", [2, 6], [1, 2, 3])]}, SCHEMA, 100)
    assert locs(exc) == [("inputs", 0, "data")]
    inputs = [tensor(n, [1], [ROW[n]]) for n in NAMES]
    inputs[2] = tensor("TAX", [2], [1, 2])
    with pytest.raises(InvalidInput) as exc:
        open_inference.parse({"inputs": inputs}, SCHEMA, 100)
    assert ("inputs", 2, "shape") in locs(exc)


def test_v2_missing_unknown_and_duplicate_inputs() -> None:
    inputs = [tensor(n, [1], [ROW[n]]) for n in NAMES[:-1]]
    inputs.append(tensor("RM", [1], [6]))
    inputs.append(tensor("ZN", [1], [6]))
    with pytest.raises(InvalidInput) as exc:
        open_inference.parse({"inputs": inputs}, SCHEMA, 100)
    messages = dict(problems(exc))
    assert "sent twice" in messages[("inputs", 5, "name")]
    assert "unknown input 'ZN'" in messages[("inputs", 6, "name")]
    assert messages[("inputs",)] == "missing input for feature LSTAT"


def test_v2_nested_error_paths_and_row_limit() -> None:
    data = MATRIX.tolist()
    data[1][3] = "x"
    with pytest.raises(InvalidInput) as exc:
        open_inference.parse({"inputs": [tensor("input", [2, 6], data)]}, SCHEMA, 100)
    assert locs(exc) == [("inputs", 0, "data", 1, 3)]
    big = {"inputs": [tensor("input", [3, 6], [1] * 18)]}
    with pytest.raises(PayloadTooLarge):
        open_inference.parse(big, SCHEMA, 2)


def test_v2_zero_rows() -> None:
    with pytest.raises(InvalidInput) as exc:
        open_inference.parse({"inputs": [tensor("input", [0, 6], [])]}, SCHEMA, 100)
    assert "no rows" in problems(exc)[0][1]
