"""KServe V1: objects and lists, the inputs synonym, every problem with its path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.http.codecs.support import (
    MATRIX,
    NAMES,
    ROW,
    ROW2,
    V1,
    decode,
    locs,
)

from ml_service.errors import InvalidInput, PayloadTooLarge


def test_v1_objects_lists_and_inputs_synonym() -> None:
    objects = {"instances": [ROW, ROW2], "parameters": {"ignored": True}}
    lists = {"inputs": [[ROW[n] for n in NAMES], [ROW2[n] for n in NAMES]]}
    np.testing.assert_array_equal(decode(V1, objects, 100), MATRIX)
    np.testing.assert_array_equal(decode(V1, lists, 100), MATRIX)


def test_v1_reports_every_problem_with_its_path() -> None:
    bad = dict(ROW2, TAX=-5)
    del bad["B"]
    body = {"instances": [dict(ROW, RM="x"), bad, [1, 2, 3], dict(ROW, LSTAT=101, EXTRA=1)]}
    with pytest.raises(InvalidInput) as exc:
        decode(V1, body, 100)
    found = locs(exc)
    assert ("instances", 0, "RM") in found
    assert ("instances", 1, "B") in found
    assert ("instances", 2) in found
    assert ("instances", 3, "EXTRA") in found
    # Value problems of structurally broken instances are not guessed at.
    assert ("instances", 1, "TAX") not in found


def test_v1_range_error_locations() -> None:
    with pytest.raises(InvalidInput) as exc:
        decode(V1, {"instances": [ROW, dict(ROW2, TAX=20000)]}, 100)
    assert locs(exc) == [("instances", 1, "TAX")]
    with pytest.raises(InvalidInput) as exc:
        decode(V1, {"instances": [[0, 6, 20000, 15, 390, 5]]}, 100)
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
        decode(V1, body, 100)
    assert locs(exc) == [loc]


def test_v1_row_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        decode(V1, {"instances": [ROW] * 3}, 2)
