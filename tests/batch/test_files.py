"""Chunked readers and atomic writers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_service.batch.files import atomic_writer, file_format, open_reader
from ml_service.errors import BatchError


def test_csv_chunks_are_text_in_file_order_of_the_asked_size(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    body = "".join(f'{i},"line\nbreak {i}", 0{i} \n\n' for i in range(25))
    path.write_text("\ufeffa, b ,c\n" + body, encoding="utf-8")
    with open_reader(path, "csv", 10) as reader:
        assert reader.columns == ("a", "b", "c")
        chunks = list(reader.chunks())
        assert reader.done == reader.total == path.stat().st_size
    assert [c.num_rows for c in chunks] == [10, 10, 5]
    table = pa.concat_tables(chunks)
    assert table.column("a").to_pylist() == [str(i) for i in range(25)]
    assert table.column("b").to_pylist()[3] == "line\nbreak 3"
    assert table.column("c").to_pylist()[3] == " 03 "


def test_parquet_chunks_keep_types_and_count_rows(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"x": list(range(7)), "y": ["a"] * 7}), path)
    with open_reader(path, "parquet", 3) as reader:
        assert (reader.total, reader.unit) == (7, "rows")
        chunks = list(reader.chunks())
    assert [c.num_rows for c in chunks] == [3, 3, 1]
    assert chunks[0].schema.field("x").type == pa.int64()


def test_formats_come_from_extensions_or_the_option(tmp_path: Path) -> None:
    assert file_format(Path("a.CSV")) == "csv"
    assert file_format(Path("a.pq")) == "parquet"
    assert file_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(BatchError, match=r"unknown file type '\.txt'"):
        file_format(Path("a.txt"))
    with pytest.raises(BatchError, match="no such file"):
        open_reader(tmp_path / "absent.csv", "csv", 10)


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(BatchError, match="appearing twice: a"):
        open_reader(path, "csv", 10)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_interrupted_writer_leaves_nothing(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    schema = pa.schema([("x", pa.int64())])

    def interrupted() -> None:
        with atomic_writer(target, fmt, schema) as writer:  # type: ignore[arg-type]
            writer.write(pa.table({"x": [1, 2]}))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        interrupted()
    assert list(tmp_path.iterdir()) == []
    with atomic_writer(target, fmt, schema) as writer:  # type: ignore[arg-type]
        writer.write(pa.table({"x": [1, 2]}))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
