"""Data files as tables, and a table's columns as the model's row matrix.

A CSV is read by pandas with every cell as text (Parquet by pyarrow, keeping its numbers), then
cleaned once: surrounding spaces dropped, the missing-value tokens (`MISSING_TOKENS`) made
missing, blank lines dropped. What a column *is* (numeric or categorical) is decided later from
that text, by one rule (`ml_service.model.columns`).

`to_matrix` turns such a frame into the row matrix the model takes — float64 (N, F) in schema
order, a category as its index, missing as NaN — column by column with vectorised pandas
operations; only the cells it refuses are looked at one by one, through `Feature.encode`, so a
refused cell carries the same words as a refused request value. Training refuses a file with any
such cell; batch scoring can write the refused rows aside and score the rest.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml_service.errors import TrainingError
from ml_service.model.schema import MISSING_TOKENS, Feature, FloatArray, Refused

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARSER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNNAMED = re.compile(r"^Unnamed: \d+$")
BoolArray = npt.NDArray[np.bool_]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def column_names(header: Sequence[str]) -> list[str]:
    """Header cells as column names: a blank one named as pandas names it (`Unnamed: N`)."""
    return [name or f"Unnamed: {i}" for i, name in enumerate(header)]


def is_unnamed(column: str) -> bool:
    """A column whose header cell was blank (pandas names it `Unnamed: N`), e.g. a saved index."""
    return bool(_UNNAMED.match(column))


@dataclass(frozen=True)
class Table:
    """A data file as read: cleaned columns (text as `str`, missing as NA; Parquet numbers as
    float64), indexed by record number in the file so that any row can be named by its line."""

    path: Path
    frame: pd.DataFrame = field(repr=False)
    sha256: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.frame.columns)

    def where(self, record: int) -> str:
        """`file:line` for a CSV record, `file: row N` for Parquet."""
        if self.path.suffix.lower() in PARQUET_SUFFIXES:
            return f"{self.path}: row {record + 1}"
        starts = self._line_starts
        line = starts[record] if record < len(starts) else record + 2
        return f"{self.path}:{line}"

    @cached_property
    def _line_starts(self) -> list[int]:
        """The line each record starts on (records may span lines inside quotes); read only when
        an error has to name a line."""
        starts: list[int] = []
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            previous_end = reader.line_num
            for _ in reader:
                starts.append(previous_end + 1)
                previous_end = reader.line_num
        return starts


def read_table(path: Path) -> Table:
    """Read a CSV or Parquet file (by its extension), cleaned; refusals name the file and line."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
    elif suffix in CSV_SUFFIXES:
        frame = _read_csv(path)
    else:
        raise TrainingError(f"{path}: unknown file type {suffix!r}; use .csv or .parquet")
    frame = clean(frame)
    return Table(path=path, frame=frame, sha256=sha256_file(path))


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Text stripped, missing-value tokens made missing, rows with no value at all dropped.

    Batch scoring applies the same to each chunk it reads, so a file means the same to both.
    """
    columns: dict[str, pd.Series[Any]] = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            column = column.astype(np.float64)
        else:
            text = column.astype("str").str.strip()
            column = text.mask(text.isin(MISSING_TOKENS) | column.isna())
        columns[str(name)] = column
    cleaned = pd.DataFrame(columns, index=frame.index)
    return cleaned[~cleaned.isna().all(axis=1)] if len(cleaned.columns) else cleaned


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        header = _header(path)
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except FileNotFoundError:
        raise TrainingError(f"{path}: no such file") from None
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    except pd.errors.EmptyDataError:
        raise TrainingError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        found = _PARSER_LINE.search(str(exc))
        if found:
            expected, line, saw = found.groups()
            raise TrainingError(
                f"{path}:{line}: {saw} cells where the header has {expected} "
                "(a cell holding a comma must be quoted)"
            ) from None
        raise TrainingError(f"{path}: not a CSV file pandas can read ({exc})") from None
    frame.columns = pd.Index(
        column_names(header)
        if len(header) == len(frame.columns)
        else [str(c).strip() for c in frame.columns]
    )
    return frame


def _header(path: Path) -> list[str]:
    """The header's names (stripped); a name given twice is refused here, before pandas would
    silently rename the second one."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = [name.strip() for name in next(csv.reader(handle), [])]
    if not header:
        raise TrainingError(f"{path}: the file is empty")
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise TrainingError(f"{path}:1: column {name!r} appears twice in the header")
        seen.add(name)
    return header


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise TrainingError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise TrainingError(f"{path}: not a Parquet file pyarrow can read ({exc})") from exc
    names = [str(n) for n in table.column_names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TrainingError(f"{path}: column {twice[0]!r} appears twice")
    frame = table.to_pandas()
    for name in frame.columns:
        column = frame[name]
        if not (
            pd.api.types.is_numeric_dtype(column)
            or pd.api.types.is_bool_dtype(column)
            or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype)
        ):
            frame[name] = column.astype("str").mask(column.isna())
    frame.index = pd.RangeIndex(len(frame))
    return frame


def as_text(column: pd.Series[Any]) -> pd.Series[Any]:
    """A column as text, numbers written as a person would (`3`, not `3.0`); missing stays NA."""
    if not pd.api.types.is_numeric_dtype(column):
        return column
    values = column.to_numpy(dtype=np.float64)
    text = [_number_text(v) for v in values.tolist()]
    return pd.Series(text, index=column.index, dtype="str").mask(np.isnan(values))


def _number_text(value: float) -> str:
    if math.isnan(value):  # masked by the caller
        return ""
    return str(int(value)) if value.is_integer() else repr(value)


def as_numbers(column: pd.Series[Any]) -> FloatArray:
    """A column as float64: numbers as they are, text parsed; text that is no number is NaN."""
    if not pd.api.types.is_numeric_dtype(column):
        column = pd.to_numeric(column, errors="coerce")
    numbers: FloatArray = column.to_numpy(dtype=np.float64, copy=True)
    return numbers


@dataclass(frozen=True, slots=True)
class CellProblem:
    """One refused cell: its row (the frame's index label), column, value and the reason, in the
    words of `Feature.encode`."""

    row: int
    column: str
    value: object
    message: str


@dataclass(frozen=True)
class Conversion:
    """A frame as the row matrix, with what was refused: `matrix` has NaN in refused cells,
    `refused` marks rows with any problem, `problems` lists them row by row."""

    matrix: FloatArray
    refused: BoolArray
    problems: tuple[CellProblem, ...]


def to_matrix(frame: pd.DataFrame, features: Sequence[Feature]) -> Conversion:
    """The frame's feature columns as the model's row matrix (see the module docstring)."""
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise KeyError(f"missing column(s): {', '.join(missing)}")
    rows = len(frame)
    matrix = np.empty((rows, len(features)), dtype=np.float64)
    found: list[tuple[int, int, CellProblem]] = []
    labels = frame.index.to_numpy()
    for j, feature in enumerate(features):
        column = frame[feature.name]
        absent = column.isna().to_numpy()
        if feature.categories is not None:
            text = as_text(column)
            codes = pd.Index(feature.categories, dtype=object).get_indexer(text.astype(object))
            values = codes.astype(np.float64)
            values[absent] = np.nan
            bad = (codes < 0) & ~absent
            originals: Any = text
        else:
            values = as_numbers(column)
            parsed = ~np.isnan(values)
            bad = ~absent & ~parsed
            finite = np.isfinite(values)
            bad |= parsed & ~finite
            bad[finite] |= ~feature.accepts(values[finite])
            originals = column
        if not feature.nullable:
            bad |= absent
        for i in np.flatnonzero(bad).tolist():
            raw = None if absent[i] else originals.iat[i]
            value = _request_value(raw, float(values[i]), feature)
            problem = CellProblem(int(labels[i]), feature.name, raw, _refusal(feature, value))
            found.append((i, j, problem))
        values[bad] = np.nan
        matrix[:, j] = values
    found.sort(key=lambda item: (item[0], item[1]))
    refused = np.zeros(rows, dtype=np.bool_)
    refused[[i for i, _, _ in found]] = True
    return Conversion(matrix, refused, tuple(p for _, _, p in found))


def _request_value(raw: object, number: float, feature: Feature) -> object:
    """The refused cell as a request would carry it: text as a string, a parsed number as a
    number, a missing cell as None."""
    if raw is None:
        return None
    if feature.categories is None and not math.isnan(number):
        return float(number)
    if isinstance(raw, float | int | np.floating | np.integer):
        return float(raw)
    return str(raw)


def _refusal(feature: Feature, value: object) -> str:
    try:
        feature.encode(value)
    except Refused as refused:
        return refused.message
    return f"{feature.name} does not accept {value!r}"


def describe_problems(table: Table, problems: Sequence[CellProblem], limit: int = 10) -> str:
    """Problems as lines `file:line: column X holds 'v': reason`, the first `limit` of them."""
    lines = []
    for problem in problems[:limit]:
        held = "is empty" if problem.value is None else f"holds {problem.value!r}"
        lines.append(
            f"{table.where(problem.row)}: column {problem.column} {held}: {problem.message}"
        )
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "\n".join(lines)
