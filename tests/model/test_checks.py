"""Value checks against a schema with every kind of feature: numbers, codes, categories, nulls.

The fast paths must give exactly what the per-value reference check gives (hypothesis), and the
reference check must word each refusal as the contract does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_service.errors import InvalidInput
from ml_service.model.checks import Checker, Problems
from ml_service.model.schema import Feature, ModelSchema, Refused, Target

MIXED = ModelSchema(
    "mixed",
    (
        Feature("rooms", min=0, max=20, min_exclusive=True),
        Feature("area", min=10, max=1000, nullable=True),
        Feature("garage", allowed=(0.0, 1.0)),
        Feature("style", kind="categorical", categories=("flat", "house", "villa")),
        Feature("heating", kind="categorical", categories=("gas", "oil"), nullable=True),
    ),
    Target("price"),
)
CHECKER = Checker(MIXED)
VALID = {"rooms": 3, "area": 80.5, "garage": 1, "style": "house", "heating": None}
ENCODED = [3.0, 80.5, 1.0, 1.0, math.nan]


def reference(rows: list[list[Any]]) -> tuple[str, Any]:
    """What the per-value check makes of `rows`: the matrix, or every problem."""
    problems = Problems(1000)
    columns = [
        CHECKER.column(j, [row[j] for row in rows], lambda i, j=j: (i, j), problems)
        for j in range(CHECKER.width)
    ]
    try:
        matrix = CHECKER.finish(columns, problems)
    except InvalidInput as exc:
        return "error", [(p.loc, p.msg) for p in exc.details]
    return "rows", matrix.tobytes()


def test_a_valid_row_encodes_categories_as_their_index_and_nulls_as_nan() -> None:
    row = CHECKER.row([VALID[n] for n in MIXED.names])
    assert row is not None
    np.testing.assert_array_equal(row, [ENCODED])
    assert row.dtype == np.float64
    assert MIXED.features[3].codes == {"flat": 0.0, "house": 1.0, "villa": 2.0}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("rooms", 0, "rooms must be > 0 and <= 20, got 0"),
        ("rooms", None, "must be a number, got null"),
        ("rooms", "3", "must be a number, got a string"),
        ("rooms", True, "must be a number, got a boolean"),
        ("rooms", 10**400, "number is too large for a double; send a finite number"),
        ("garage", 2, "garage must be 0 or 1, got 2"),
        ("style", "castle", "style must be one of 'flat', 'house', 'villa', got 'castle'"),
        ("style", "House", "style must be one of 'flat', 'house', 'villa', got 'House'"),
        ("style", 1, "style must be a string, one of 'flat', 'house', 'villa'; got a number"),
        ("style", None, "style must be a string, one of 'flat', 'house', 'villa'; got null"),
        ("heating", ["gas"], "heating must be a string, one of 'gas', 'oil'; got a list"),
    ],
)
def test_each_refusal_is_worded_as_the_contract_says(name: str, value: Any, message: str) -> None:
    feature = MIXED.features[MIXED.names.index(name)]
    with pytest.raises(Refused) as exc:
        feature.encode(value)
    assert exc.value.message == message
    row = [value if n == name else VALID[n] for n in MIXED.names]
    assert CHECKER.row(row) is None
    assert reference([row]) == ("error", [((0, MIXED.names.index(name)), message)])


def test_many_categories_are_listed_by_the_first_few_and_their_count() -> None:
    feature = Feature("city", kind="categorical", categories=tuple(f"c{i}" for i in range(40)))
    with pytest.raises(Refused, match=r"one of 40 values: 'c0', .*'c9', \.\.\., got 'x'"):
        feature.encode("x")


def test_problems_keep_the_first_ones_and_count_them_all() -> None:
    problems = Problems(limit=3)
    for i in range(10):
        problems.add((i,), "bad")
    error = problems.error()
    assert len(error.details) == 3
    assert "(10 problems, the first 3 listed; first at 0: bad)" in error.message


def values_for(feature: Feature) -> st.SearchStrategy[Any]:
    odd = st.sampled_from([None, True, "x", [1], {"a": 1}, 10**400, -1, 0, 0.5, 2, 1e308])
    if feature.categories:
        good: st.SearchStrategy[Any] = st.sampled_from(feature.categories)
    elif feature.allowed:
        good = st.sampled_from([0, 1, 0.0, 1.0])
    else:
        good = st.floats(feature.min + 1, min(feature.max, 900.0))
    if feature.nullable:
        good = st.one_of(good, st.none())
    return st.one_of(good, good, good, odd)


table = st.lists(
    st.tuples(*(values_for(f) for f in MIXED.features)).map(list), min_size=1, max_size=4
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(table)
def test_the_fast_paths_agree_with_the_reference(rows: list[list[Any]]) -> None:
    expected = reference(rows)
    columns = CHECKER.columns([[row[j] for row in rows] for j in range(CHECKER.width)])
    single = CHECKER.row(rows[0]) if len(rows) == 1 else None
    for fast in (columns, single):
        if fast is not None:
            assert expected == ("rows", fast.tobytes())
            assert fast.flags.c_contiguous
    if expected[0] == "rows" and not any(v is None for row in rows for v in row):
        assert columns is not None, "a valid table without nulls takes the fast path"


def test_numeric_schemas_take_the_numpy_path() -> None:
    numeric = Checker(ModelSchema("n", (Feature("a", min=0, max=1), Feature("b")), Target("y")))
    matrix = numeric.rows([[0.5, 3], [1, -2]])
    assert matrix is not None
    np.testing.assert_array_equal(matrix, [[0.5, 3.0], [1.0, -2.0]])
    assert numeric.rows([[1.5, 3]]) is None
    assert CHECKER.rows([[3, 80.5, 1, 1, 0]]) is None, "categorical schemas never take it"
