"""One chunk of rows scored: cells to values, values checked, checked rows predicted.

Both engines (`ml-service score` on one machine, `ml_service.batch.spark` on a cluster) call
`Scorer.score` on each chunk, so a file means the same to both, and the same as to the API:
cells are cleaned and converted by `ml_service.model.data` (`clean`, `to_matrix`: blank cells
and the missing-value tokens are missing, numbers parsed, categories looked up, column by column
with vectorised operations), every refused cell carries `Feature.encode`'s words (the API's),
and the checked rows go to the artifact's ONNX graph through `Predictor`.

A scored chunk is the kept input columns of its accepted rows, in their order, with the
prediction columns after them; the refused rows become rejects: the row number, the id (when
one is carried) and every problem of the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml_service.batch.command import PREDICTION, PROBLEMS, ROW
from ml_service.errors import BatchError
from ml_service.model.artifact import ServingArtifact
from ml_service.model.data import CellProblem, clean, to_matrix
from ml_service.model.schema import MISSING_TOKENS, FloatArray, Label, ModelSchema
from ml_service.predictor import Predictor

PROBABILITY = "probability_"
# Between a row's problems in the rejects file (the contract's messages may hold "; ").
SEPARATOR = " | "
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Scored:
    """What one chunk became: the output table, the row numbers of its rows, the rejects."""

    output: pa.Table
    rows: IntArray
    rejects: pa.Table


def prediction_columns(schema: ModelSchema, prediction: str = PREDICTION) -> list[pa.Field]:
    """The columns added to each row: a regressor's prediction, or a classifier's label and
    one `probability_<class>` column per class, in the model's class order."""
    classes = schema.target.classes
    if classes is None:
        return [pa.field(prediction, pa.float64())]
    kind = pa.int64() if all(isinstance(c, int) for c in classes) else pa.string()
    return [pa.field(prediction, kind)] + [
        pa.field(f"{PROBABILITY}{c}", pa.float64()) for c in classes
    ]


def problem_text(column: str, message: str) -> str:
    """One problem as a rejects file lists it: `column: message`, without naming the column
    twice when the contract's message already starts with it."""
    return message if message.startswith(f"{column} ") else f"{column}: {message}"


class Scorer:
    """A model's scoring of chunks with a given input schema (the columns of every chunk).

    `keep` are the input columns written out with each scored row (default: all of them),
    `id_column` a column carried into the rejects too.
    """

    def __init__(
        self,
        artifact: ServingArtifact,
        predictor: Predictor,
        input_schema: pa.Schema,
        keep: Sequence[str] | None = None,
        id_column: str | None = None,
        prediction: str = PREDICTION,
    ) -> None:
        self.artifact = artifact
        self.schema = artifact.schema
        self.predictor = predictor
        self.features = self.schema.features
        self.names = list(self.schema.names)
        self.id_column = id_column
        columns = list(input_schema.names)
        wanted = list(keep if keep is not None else columns)
        if id_column is not None and id_column not in wanted:
            wanted.insert(0, id_column)
        missing = [n for n in [*self.names, *wanted] if n not in columns]
        if missing:
            unique = list(dict.fromkeys(missing))
            raise BatchError(
                f"the input lacks column(s) {', '.join(unique)} "
                f"(model {self.schema.name} needs {', '.join(self.names)})"
            )
        self.keep = wanted
        added = prediction_columns(self.schema, prediction)
        clash = [f.name for f in added if f.name in wanted]
        if clash:
            raise BatchError(
                f"the input already has column(s) {', '.join(clash)}, which the output adds; "
                "leave them out with --columns or name the prediction with --prediction-column"
            )
        self.added = added
        self.output_schema = pa.schema([input_schema.field(n) for n in wanted] + added)
        id_fields = [] if id_column is None else [input_schema.field(id_column)]
        self.rejects_schema = pa.schema(
            [pa.field(ROW, pa.int64()), *id_fields, pa.field(PROBLEMS, pa.string())]
        )
        self._classes: list[Label] = list(self.schema.target.classes or ())

    def score(self, chunk: pa.Table, rows: IntArray) -> Scored:
        """Score `chunk`, whose rows are numbered `rows` (1-based) in the whole input."""
        frame = self._frame(chunk)
        cleaned = clean(frame).reindex(frame.index)  # a row of blanks is kept, and refused
        conversion = to_matrix(cleaned, self.features)
        accepted = ~conversion.refused
        prediction = self.predictor.predict(conversion.matrix[accepted])
        kept = chunk.select(self.keep).filter(pa.array(accepted))
        arrays: list[pa.Array] = []
        if prediction.values is not None:
            arrays.append(pa.array(prediction.values, pa.float64()))
        elif prediction.classes is not None and prediction.probabilities is not None:
            labels = np.asarray(self._classes, dtype=object)[prediction.classes]
            arrays.append(pa.array(labels.tolist(), self.added[0].type))
            probabilities = prediction.probabilities
            arrays.extend(
                pa.array(probabilities[:, k], pa.float64()) for k in range(len(self._classes))
            )
        output = pa.Table.from_arrays([*kept.columns, *arrays], schema=self.output_schema)
        return Scored(output, rows[accepted], self._rejects(chunk, rows, conversion.problems))

    def _frame(self, chunk: pa.Table) -> pd.DataFrame:
        """The feature columns as pandas. A numeric feature's text column is parsed by pyarrow
        when every cell is a missing-value token or a number (the common case, many times
        faster than the text path); any other column goes as it is, for `to_matrix` to read
        and refuse cell by cell."""
        columns: dict[str, Any] = {}
        for feature in self.features:
            column = chunk.column(feature.name)
            numbers = None
            if not feature.categorical and _is_text(column.type):
                numbers = _numbers(column)
            columns[feature.name] = numbers if numbers is not None else column.to_pandas()
        return pd.DataFrame(columns, index=pd.RangeIndex(chunk.num_rows))

    def _rejects(
        self, chunk: pa.Table, rows: IntArray, problems: Sequence[CellProblem]
    ) -> pa.Table:
        by_row: dict[int, list[str]] = {}
        for problem in problems:
            text = problem_text(problem.column, problem.message)
            by_row.setdefault(problem.row, []).append(text)
        positions = sorted(by_row)
        columns: list[pa.Array] = [pa.array(rows[positions], pa.int64())]
        if self.id_column is not None:
            columns.append(chunk.column(self.id_column).take(pa.array(positions, pa.int64())))
        columns.append(pa.array([SEPARATOR.join(by_row[i]) for i in positions], pa.string()))
        return pa.Table.from_arrays(columns, schema=self.rejects_schema)


_TOKENS = pa.array(MISSING_TOKENS, pa.string())


def _numbers(column: pa.ChunkedArray) -> FloatArray | None:
    """A text column as float64 (missing tokens as NaN) when every other cell is a number
    pyarrow reads; None when any is not (or reads as NaN), for the exact path to decide."""
    missing = pc.is_in(column, value_set=_TOKENS.cast(column.type))
    try:
        numbers = pc.cast(pc.if_else(missing, None, column), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pc.any(pc.is_nan(numbers)).as_py():
        return None
    values: FloatArray = numbers.to_numpy(zero_copy_only=False)
    return values


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))
