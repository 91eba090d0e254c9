"""Original dialect: both forms, row order, and every schema rule with its loc."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.http.codecs.support import (
    MATRIX,
    NAMES,
    ORIGINAL,
    ROW,
    ROW2,
    decode,
    locs,
    problems,
)

from ml_service.errors import InvalidInput, PayloadTooLarge


def test_original_columns_orient() -> None:
    body = {n: {"0": ROW[n], "1": ROW2[n]} for n in NAMES}
    np.testing.assert_array_equal(decode(ORIGINAL, body, 100), MATRIX)


def test_original_lists() -> None:
    body = {n: [ROW[n], ROW2[n]] for n in NAMES}
    np.testing.assert_array_equal(decode(ORIGINAL, body, 100), MATRIX)


def test_original_rows_follow_the_first_features_key_order_not_sorted() -> None:
    body: dict[str, Any] = {"RM": {"b": ROW2["RM"], "a": ROW["RM"]}}
    for n in NAMES:
        if n != "RM":
            body[n] = {"a": ROW[n], "b": ROW2[n]}
    np.testing.assert_array_equal(decode(ORIGINAL, body, 100), MATRIX[::-1])


def test_original_reports_every_problem_at_once() -> None:
    body: dict[str, Any] = {n: {"0": ROW[n], "1": ROW2[n]} for n in NAMES}
    body["CHAS"]["1"] = 2
    body["RM"]["0"] = "six"
    body["TAX"]["1"] = -1
    body["B"]["0"] = None
    del body["LSTAT"]
    body["ZN"] = {"0": 1}
    with pytest.raises(InvalidInput) as exc:
        decode(ORIGINAL, body, 100)
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
        decode(ORIGINAL, body, 100)
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
    assert decode(ORIGINAL, body, 100).shape == (1, 6)


def test_original_structure_problems() -> None:
    body: dict[str, Any] = {n: {"0": ROW[n]} for n in NAMES}
    body["RM"] = [6.5]
    body["TAX"] = {"0": 296, "1": 300}
    body["B"] = 3
    with pytest.raises(InvalidInput) as exc:
        decode(ORIGINAL, body, 100)
    messages = dict(problems(exc))
    assert "use one form for every feature" in messages[("RM",)]
    assert "row keys differ from CHAS's: unexpected ['1']" in messages[("TAX",)]
    assert "got a number" in messages[("B",)] or "got int" in messages[("B",)]


def test_original_zero_rows_and_non_object_bodies() -> None:
    with pytest.raises(InvalidInput) as exc:
        decode(ORIGINAL, {n: {} for n in NAMES}, 100)
    assert problems(exc) == [(("CHAS",), "no rows; send at least one")]
    for body in ([], "x", 1, None):
        with pytest.raises(InvalidInput):
            decode(ORIGINAL, body, 100)


def test_row_limit_is_413_even_when_values_are_wrong() -> None:
    body = {n: ["bad"] * 11 for n in NAMES}
    with pytest.raises(PayloadTooLarge, match="11 rows; the limit is 10"):
        decode(ORIGINAL, body, 10)
    assert decode(ORIGINAL, {n: [ROW[n]] * 10 for n in NAMES}, 10).shape == (10, 6)
