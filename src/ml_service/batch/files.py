"""Data files read and written in chunks, so memory stays flat whatever a file's size.

A CSV is read by pyarrow's streaming reader with every column as text (what a cell *means* is
decided later, by `ml_service.model.data`, as for training); a Parquet file batch by batch,
keeping its types. Blank lines of a CSV are skipped, so row N is the Nth record after the
header, as in a Parquet file. Output goes to a temporary file beside the final one that is
renamed into place only when the whole run succeeded (`AtomicFile`).
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ml_service.batch.command import FORMATS
from ml_service.errors import BatchError
from ml_service.model.data import CSV_SUFFIXES, PARQUET_SUFFIXES, column_names

Format = Literal["csv", "parquet"]
# pyarrow parses a CSV in blocks of this many bytes (then rows are regrouped into chunks).
CSV_BLOCK_BYTES = 1 << 19


def file_format(path: Path, given: str | None = None) -> Format:
    """A file's format: `given`, else from its extension."""
    if given is not None:
        if given not in FORMATS:
            raise BatchError(f"unknown format {given!r}; use csv or parquet")
        return "csv" if given == "csv" else "parquet"
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise BatchError(
        f"{path}: unknown file type {suffix or '(no extension)'!r}; "
        "use .csv or .parquet, or say --format"
    )


@dataclass
class Reader:
    """A data file opened for reading in chunks of `chunk_rows` rows (the last may be short).

    `total` is the file's row count (Parquet) or byte size (CSV); `done` how much of it has
    been read so far, in the same unit, for progress.
    """

    path: Path
    format: Format
    schema: pa.Schema
    chunk_rows: int
    total: int
    unit: str
    _batches: Iterator[pa.RecordBatch] = field(repr=False)
    _position: Any = field(repr=False, default=None)
    _closers: list[Any] = field(repr=False, default_factory=list)
    rows_read: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)

    @property
    def done(self) -> int:
        if self._position is None:
            return self.rows_read
        try:
            return min(int(self._position.tell()), self.total)
        except (OSError, ValueError):
            return self.total

    def chunks(self) -> Iterator[pa.Table]:
        """The file's rows, `chunk_rows` at a time, as tables with the file's columns."""
        pending: list[pa.RecordBatch] = []
        held = 0
        try:
            for batch in self._batches:
                pending.append(batch)
                held += batch.num_rows
                while held >= self.chunk_rows:
                    table = pa.Table.from_batches(pending, self.schema)
                    chunk = table.slice(0, self.chunk_rows)
                    rest = table.slice(self.chunk_rows)
                    pending, held = rest.to_batches(), rest.num_rows
                    self.rows_read += chunk.num_rows
                    yield chunk
        except pa.ArrowInvalid as exc:
            raise BatchError(f"{self.path}: cannot be read ({_first_line(exc)})") from None
        except OSError as exc:
            raise BatchError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        if held:
            self.rows_read += held
            yield pa.Table.from_batches(pending, self.schema)

    def close(self) -> None:
        for closer in self._closers:
            closer.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_reader(path: Path, fmt: Format, chunk_rows: int) -> Reader:
    """Open `path` for chunked reading; an unreadable file fails here, naming the problem."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file")
    if fmt == "parquet":
        return _parquet(path, chunk_rows)
    return _csv(path, chunk_rows)


def _parquet(path: Path, chunk_rows: int) -> Reader:
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise BatchError(f"{path}: not a Parquet file pyarrow can read ({exc})") from None
    _refuse_twice(path, list(schema.names))
    batches = parquet.iter_batches(batch_size=chunk_rows)
    return Reader(
        path,
        "parquet",
        schema,
        chunk_rows,
        parquet.metadata.num_rows,
        "rows",
        batches,
        _closers=[parquet],
    )


def _csv(path: Path, chunk_rows: int) -> Reader:
    names = column_names(csv_header(path))
    source = pa.OSFile(str(path), "rb")
    try:
        batches = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                # A blank cell is null (as Spark reads it); any other text stays text.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        source.close()
        raise BatchError(f"{path}: cannot be read ({_first_line(exc)})") from None
    schema = pa.schema([(name, pa.string()) for name in names])
    size = path.stat().st_size
    return Reader(
        path, "csv", schema, chunk_rows, size, "bytes", iter(batches), source, [batches, source]
    )


def csv_header(path: Path) -> list[str]:
    """A CSV's header names (stripped); a name given twice is refused."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = [name.strip() for name in next(csv.reader(handle), [])]
    except UnicodeDecodeError as exc:
        raise BatchError(f"{path}: not UTF-8 text: {exc.reason}") from None
    except (OSError, csv.Error) as exc:
        raise BatchError(f"{path}: cannot read: {exc}") from None
    if not header:
        raise BatchError(f"{path}: the file is empty")
    _refuse_twice(path, [name for name in header if name])
    return header


def _refuse_twice(path: Path, names: list[str]) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BatchError(f"{path}: column(s) appearing twice: {', '.join(twice)}")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class AtomicFile:
    """A file written under a temporary name in its final directory and renamed into place by
    `commit`; `discard` (or leaving the `with` block by an exception) removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        directory = path.parent
        if not directory.is_dir():
            raise BatchError(f"{path}: the directory {directory} does not exist")
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
        os.close(handle)
        self.temporary = Path(name)

    def commit(self) -> None:
        self.temporary.chmod(0o644)
        self.temporary.replace(self.path)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.temporary.unlink()

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.discard()


class TableWriter:
    """Tables appended to one CSV or Parquet file, all with `schema`."""

    def __init__(self, path: Path, fmt: Format, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self._writer: pacsv.CSVWriter | pq.ParquetWriter
        if fmt == "csv":
            self._writer = pacsv.CSVWriter(str(path), schema)
        else:
            self._writer = pq.ParquetWriter(str(path), schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema))
            self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()


@contextlib.contextmanager
def atomic_writer(path: Path, fmt: Format, schema: pa.Schema) -> Iterator[TableWriter]:
    """A `TableWriter` whose file appears at `path` only if the block completes."""
    with AtomicFile(path) as target:
        writer = TableWriter(target.temporary, fmt, schema)
        try:
            yield writer
        finally:
            writer.close()
        target.commit()
