"""Data contract, reading: files become cleaned tables; tables become the row matrix with every
refused cell named in `Feature.encode`'s words."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.model.conftest import EXAMPLES, write_csv

from ml_service.errors import TrainingError
from ml_service.model.data import MISSING_TOKENS, clean, read_table, to_matrix
from ml_service.model.schema import Feature, Refused


def test_missing_tokens_and_spaces_read_as_missing(tmp_path: Path) -> None:
    rows = [[token, f" v{i} "] for i, token in enumerate(MISSING_TOKENS)]
    table = read_table(write_csv(tmp_path / "d.csv", ["A", "B"], [*rows, [" 1 ", " "]]))
    assert table.frame["A"].isna().sum() == len(MISSING_TOKENS)
    assert table.frame["A"].dropna().tolist() == ["1"]
    assert table.frame["B"].dropna().tolist() == [f"v{i}" for i in range(len(MISSING_TOKENS))]
    assert table.frame["B"].isna().sum() == 1


def test_blank_lines_are_dropped_and_lines_still_named(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('A,B\n1,x\n\n2,"two\nlines"\n,\n3,y\n')
    table = read_table(path)
    assert table.frame["A"].tolist() == ["1", "2", "3"]
    # records 0, 2 and 4 start on lines 2, 4 and 7 (a blank line, a quoted newline, empty cells)
    assert [table.where(r) for r in table.frame.index] == [f"{path}:{n}" for n in (2, 4, 7)]


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    source = read_table(EXAMPLES / "homes.csv").frame
    frame = source.assign(lotsize=pd.to_numeric(source["lotsize"]))
    frame.to_parquet(tmp_path / "homes.parquet")
    table = read_table(tmp_path / "homes.parquet")
    assert table.columns == tuple(source.columns)
    assert table.frame["lotsize"].dtype == np.float64
    assert table.frame["airco"].isna().sum() == source["airco"].isna().sum()
    assert table.where(4) == f"{tmp_path / 'homes.parquet'}: row 5"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"d\.csv: the file is empty"),
        ("A,B\n1,2\n1,2,3\n", r"d\.csv:3: 3 cells where the header has 2"),
        ("A,A\n1,2\n", r"d\.csv:1: column 'A' appears twice"),
    ],
)
def test_unreadable_csv_is_refused_naming_the_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(TrainingError, match=message):
        read_table(path)


def test_other_unusable_files(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(b"A\n\xe9t\xe9\n")
    with pytest.raises(TrainingError, match="not UTF-8 text"):
        read_table(tmp_path / "latin.csv")
    with pytest.raises(TrainingError, match="no such file"):
        read_table(tmp_path / "none.csv")
    (tmp_path / "d.xlsx").write_bytes(b"x")
    with pytest.raises(TrainingError, match=r"unknown file type '\.xlsx'; use \.csv or \.parquet"):
        read_table(tmp_path / "d.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(TrainingError, match="not a Parquet file"):
        read_table(tmp_path / "bad.parquet")


COLOUR = Feature("colour", kind="categorical", categories=("blue", "red"), nullable=True)
SIZE = Feature("size", min=0, max=10)
ROOMS = Feature("rooms", min=0, max=10, nullable=True)
CODE = Feature("code", kind="categorical", categories=("1", "2", "10"))


def frame(**columns: list[object]) -> pd.DataFrame:
    return clean(pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()}))


def test_matrix_holds_numbers_category_indices_and_nan() -> None:
    data = frame(size=["1.5", "2", "3"], colour=["red", None, "blue"], rooms=["4", "", "6"])
    conversion = to_matrix(data, [SIZE, COLOUR, ROOMS])
    expected = np.array([[1.5, 1.0, 4.0], [2.0, math.nan, math.nan], [3.0, 0.0, 6.0]])
    np.testing.assert_array_equal(conversion.matrix, expected)
    assert conversion.problems == ()
    assert not conversion.refused.any()


def test_numeric_codes_of_a_categorical_feature_match_their_text() -> None:
    numbers = pd.DataFrame({"code": [1.0, 10.0, 2.0]})
    conversion = to_matrix(numbers, [CODE])
    assert conversion.matrix[:, 0].tolist() == [0.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("feature", "cell", "request_value"),
    [
        (SIZE, "abc", "abc"),
        (SIZE, "11", 11.0),
        (SIZE, "-1", -1.0),
        (SIZE, "inf", math.inf),
        (SIZE, "", None),
        (COLOUR, "green", "green"),
        (COLOUR, "Red", "Red"),
        (CODE, "3", "3"),
        (CODE, "", None),
    ],
)
def test_every_refused_cell_gets_the_request_check_wording(
    feature: Feature, cell: str, request_value: object
) -> None:
    good = "1" if feature is SIZE else (feature.categories or ("",))[0]
    # another column keeps the row: a row with no value at all is a blank line, dropped
    data = frame(**{feature.name: [good, cell, good], "other": ["a", "b", "c"]})
    conversion = to_matrix(data, [feature])
    assert conversion.refused.tolist() == [False, True, False]
    (problem,) = conversion.problems
    with pytest.raises(Refused) as refused:
        feature.encode(request_value)
    assert problem.message == refused.value.message
    assert (problem.row, problem.column) == (1, feature.name)
    assert math.isnan(conversion.matrix[1, 0])


def test_problems_come_row_by_row_and_good_rows_survive() -> None:
    data = frame(size=["x", "1", "99"], colour=["red", "pink", "teal"])
    conversion = to_matrix(data, [SIZE, COLOUR])
    assert [(p.row, p.column) for p in conversion.problems] == [
        (0, "size"),
        (1, "colour"),
        (2, "size"),
        (2, "colour"),
    ]
    assert conversion.refused.tolist() == [True, True, True]
    assert conversion.problems[0].message == "must be a number, got a string"
    assert conversion.problems[1].message == "colour must be one of 'blue', 'red', got 'pink'"
    assert conversion.matrix[1, 0] == 1.0


def test_a_large_chunk_converts_with_only_its_bad_cells_looked_at() -> None:
    rows = 200_000
    rng = np.random.default_rng(0)
    colours = np.array(["blue", "red"], dtype=object)[rng.integers(0, 2, rows)]
    colours[123_456] = "mauve"
    data = frame(size=rng.uniform(0, 10, rows).astype(str).tolist(), colour=colours.tolist())
    conversion = to_matrix(data, [SIZE, COLOUR])
    assert len(conversion.problems) == 1
    assert conversion.problems[0].row == 123_456
    assert np.count_nonzero(conversion.refused) == 1


def test_a_missing_column_is_named() -> None:
    with pytest.raises(KeyError, match="missing column"):
        to_matrix(frame(size=["1"]), [SIZE, COLOUR])
