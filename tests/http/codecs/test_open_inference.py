"""Open Inference Protocol (V2): both forms, datatypes, every problem with its path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.http.codecs.support import (
    MATRIX,
    NAMES,
    ROW,
    ROW2,
    V2,
    decode,
    locs,
    problems,
)

from ml_service.errors import InvalidInput, PayloadTooLarge


def tensor(name: str, shape: list[int], data: list[Any], datatype: str = "FP64") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_v2_matrix_input_flat_and_nested() -> None:
    flat = {"inputs": [tensor("any-name", [2, 6], MATRIX.ravel().tolist())]}
    nested = {"id": "r1", "inputs": [tensor("x", [2, 6], MATRIX.tolist(), "FP32")]}
    rows, meta = decode(V2, flat, 100)
    np.testing.assert_array_equal(rows, MATRIX)
    assert meta.id is None
    rows, meta = decode(V2, nested, 100)
    np.testing.assert_array_equal(rows, MATRIX)
    assert meta.id == "r1"


def test_v2_one_input_per_feature_in_any_order() -> None:
    inputs = [tensor(n, [2], [ROW[n], ROW2[n]]) for n in reversed(NAMES)]
    inputs[0] = tensor(inputs[0]["name"], [2, 1], [[ROW["LSTAT"]], [ROW2["LSTAT"]]])
    body = {"inputs": inputs, "parameters": {"a": 1}, "outputs": [{"name": "predict"}]}
    rows, _ = decode(V2, body, 100)
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
        assert decode(V2, body, 100)[0].shape == (1, 6)
    else:
        with pytest.raises(InvalidInput):
            decode(V2, body, 100)


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
        decode(V2, body, 100)
    found = locs(exc)
    assert ("id",) in found
    assert ("parameters",) in found
    assert ("outputs", 0, "name") in found
    assert ("inputs", 0, "data", 7) in found


def test_v2_shape_and_count_mismatch() -> None:
    with pytest.raises(InvalidInput) as exc:
        decode(V2, {"inputs": [tensor("input", [2, 6], [1, 2, 3])]}, 100)
    assert locs(exc) == [("inputs", 0, "data")]
    inputs = [tensor(n, [1], [ROW[n]]) for n in NAMES]
    inputs[2] = tensor("TAX", [2], [1, 2])
    with pytest.raises(InvalidInput) as exc:
        decode(V2, {"inputs": inputs}, 100)
    assert ("inputs", 2, "shape") in locs(exc)


def test_v2_missing_unknown_and_duplicate_inputs() -> None:
    inputs = [tensor(n, [1], [ROW[n]]) for n in NAMES[:-1]]
    inputs.append(tensor("RM", [1], [6]))
    inputs.append(tensor("ZN", [1], [6]))
    with pytest.raises(InvalidInput) as exc:
        decode(V2, {"inputs": inputs}, 100)
    messages = dict(problems(exc))
    assert "sent twice" in messages[("inputs", 5, "name")]
    assert "unknown input 'ZN'" in messages[("inputs", 6, "name")]
    assert messages[("inputs",)] == "missing input for feature LSTAT"


def test_v2_nested_error_paths_and_row_limit() -> None:
    data = MATRIX.tolist()
    data[1][3] = "x"
    with pytest.raises(InvalidInput) as exc:
        decode(V2, {"inputs": [tensor("input", [2, 6], data)]}, 100)
    assert locs(exc) == [("inputs", 0, "data", 1, 3)]
    big = {"inputs": [tensor("input", [3, 6], [1] * 18)]}
    with pytest.raises(PayloadTooLarge):
        decode(V2, big, 2)


def test_v2_zero_rows() -> None:
    with pytest.raises(InvalidInput) as exc:
        decode(V2, {"inputs": [tensor("input", [0, 6], [])]}, 100)
    assert "no rows" in problems(exc)[0][1]
