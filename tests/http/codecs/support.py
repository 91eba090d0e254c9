"""The default model's schema and rows, and each codec's decode as the endpoint calls it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml_service.errors import InvalidInput
from ml_service.http.codecs import BY_DIALECT, Codec
from ml_service.http.codecs.base import Limits
from ml_service.model.checks import Checker
from ml_service.model.schema import FloatArray, ModelSchema

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ModelSchema.from_dict(json.loads((ROOT / "data" / "housing.schema.json").read_text()))
CHECKER = Checker(SCHEMA)
NAMES = SCHEMA.names
ROW = {"CHAS": 0, "RM": 6.575, "TAX": 296.0, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 4.98}
ROW2 = {"CHAS": 1, "RM": 7.1, "TAX": 242.0, "PTRATIO": 17.8, "B": 392.8, "LSTAT": 4.03}
MATRIX = np.array([[ROW[n] for n in NAMES], [ROW2[n] for n in NAMES]])
ORIGINAL = BY_DIALECT["original"]
V1 = BY_DIALECT["v1"]
V2 = BY_DIALECT["v2"]


def decode(codec: Codec, body: Any, max_rows: int = 100, checker: Checker = CHECKER) -> Any:
    """What the codec makes of `body`: the rows, and for V2 the request's metadata too."""
    rows, meta = codec.decode(body, checker, Limits(max_rows))
    return (rows, meta) if codec is V2 else rows


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[tuple[Any, ...], str]]:
    return [(p.loc, p.msg) for p in exc.value.details]


def locs(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[Any, ...]]:
    return [p.loc for p in exc.value.details]


def rows_of(result: Any) -> FloatArray:
    return result[0] if isinstance(result, tuple) else result
