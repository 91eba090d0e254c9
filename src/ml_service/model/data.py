"""Reading a training CSV into numeric columns, with errors that name the row and column."""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml_service.errors import TrainingError
from ml_service.model.schema import FloatArray


@dataclass(frozen=True)
class Dataset:
    """Feature matrix, target vector and the digest of the file they came from."""

    features: tuple[str, ...]
    target: str
    x: FloatArray
    y: FloatArray
    sha256: str
    path: Path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(path: Path, features: Sequence[str], target: str) -> Dataset:
    """Load the named columns; every cell must be a finite number."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise TrainingError(f"{path}: the file is empty")
            header = [name.strip() for name in header]
            wanted = [*features, target]
            missing = [name for name in wanted if name not in header]
            if missing:
                raise TrainingError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"the header has {', '.join(header)}"
                )
            index = [header.index(name) for name in wanted]
            rows: list[list[float]] = []
            for line_no, record in enumerate(reader, start=2):
                if not record or all(not cell.strip() for cell in record):
                    continue
                rows.append([_cell(path, line_no, header, record, i) for i in index])
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    if len(rows) < 20:
        raise TrainingError(f"{path}: {len(rows)} data rows; at least 20 are needed to train")
    table = np.asarray(rows, dtype=np.float64)
    return Dataset(
        features=tuple(features),
        target=target,
        x=table[:, :-1],
        y=table[:, -1],
        sha256=sha256_file(path),
        path=path,
    )


def _cell(path: Path, line_no: int, header: list[str], record: list[str], i: int) -> float:
    if i >= len(record):
        raise TrainingError(f"{path}:{line_no}: column {header[i]} is missing in this row")
    text = record[i].strip()
    try:
        value = float(text)
    except ValueError:
        raise TrainingError(
            f"{path}:{line_no}: column {header[i]} holds {text!r}, not a number"
        ) from None
    if not math.isfinite(value):
        raise TrainingError(f"{path}:{line_no}: column {header[i]} holds {text!r}, not finite")
    return value
