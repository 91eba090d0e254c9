"""Scoring a Spark DataFrame with an artifact: the same checks and answers as `ml-service score`.

The driver reads and verifies the artifact (`load_serving`), then broadcasts its files' bytes.
Each executor's Python worker writes them to a private directory and loads them with the same
verification (every digest against the manifest, the manifest against its own SHA-256), once
per worker, before any row is scored. Rows are scored by `mapInArrow` with the one-machine
`Scorer`, chunk by chunk (Arrow batches), with onnxruntime on the executors.

`score_dataframe` returns the scored DataFrame (kept input columns and the prediction columns)
and the rejects DataFrame (`row`, the id column when given, `problems`), the same columns as
the files `ml-service score` writes. Row numbers are 1-based in the DataFrame's order (for one
file read by Spark, the file's order), computed from partition sizes without moving rows.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_service.batch.command import PREDICTION, PROBLEMS, ROW
from ml_service.errors import BatchError
from ml_service.model.artifact import MANIFEST, digest, load_serving, read_file

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from ml_service.batch.command import Job, Show, Summary
    from ml_service.batch.scoring import Scorer

ROW_COLUMN = "__ml_service_row"
PROBLEMS_COLUMN = "__ml_service_problems"
_PARTITION = "__ml_service_partition"
_ID = "__ml_service_id"
# Spark's monotonically_increasing_id puts the partition index above bit 33.
_PARTITION_SHIFT = 33


def artifact_files(path: Path) -> dict[str, bytes]:
    """The artifact's files as bytes (verified against its manifest), to ship to executors."""
    artifact = load_serving(path)
    files = {MANIFEST: read_file(path, MANIFEST)}
    for name in artifact.manifest.files:
        files[name] = read_file(path, name, size=int(artifact.manifest.files[name]["bytes"]))
    return files


_LOADED: dict[str, Any] = {}


def _unpacked(files: dict[str, bytes]) -> Any:
    """The artifact and its predictor in this Python worker, written out and verified once."""
    from ml_service.predictor import Predictor

    pin = digest(files[MANIFEST])
    key = digest("".join(f"{n}:{digest(files[n])}" for n in sorted(files)).encode())
    found = _LOADED.get(key)
    if found is None:
        # Verified from disk as any artifact is; what serves is then held in memory.
        with tempfile.TemporaryDirectory(prefix="ml-service-artifact-") as unpacked:
            directory = Path(unpacked)
            for name, data in files.items():
                target = directory / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            artifact = load_serving(directory, sha256=pin)
            found = _LOADED[key] = (artifact, Predictor(artifact))
    return found


def with_row_numbers(df: DataFrame, column: str = ROW_COLUMN) -> DataFrame:
    """`df` with 1-based row numbers in its order, from each partition's size and offset."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual name

    marked = df.withColumn(_PARTITION, F.spark_partition_id()).withColumn(
        _ID, F.monotonically_increasing_id()
    )
    sizes: dict[int, int] = dict(marked.groupBy(_PARTITION).count().collect())
    offsets: list[Any] = []
    total = 0
    for partition in range(max(sizes, default=-1) + 1):
        offsets += [F.lit(partition), F.lit(total)]
        total += sizes.get(partition, 0)
    offset = F.element_at(F.create_map(*offsets), F.col(_PARTITION)) if offsets else F.lit(0)
    local = F.col(_ID) - F.shiftleft(F.col(_PARTITION).cast("long"), _PARTITION_SHIFT)
    return marked.withColumn(column, (offset + local + 1).cast("long")).drop(_PARTITION, _ID)


def _combined_schema(scorer: Scorer) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            *(field.with_nullable(True) for field in scorer.output_schema),
            pa.field(ROW_COLUMN, pa.int64()),
            pa.field(PROBLEMS_COLUMN, pa.string()),
        ]
    )


def _scorer(
    files: dict[str, bytes],
    schema: pa.Schema,
    keep: Sequence[str] | None,
    id_column: str | None,
    prediction: str,
) -> Scorer:
    from ml_service.batch.scoring import Scorer

    artifact, predictor = _unpacked(files)
    return Scorer(artifact, predictor, schema, keep, id_column, prediction)


def _score_batches(
    broadcast: Any,
    keep: Sequence[str] | None,
    id_column: str | None,
    prediction: str,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The executors' function: each Arrow batch scored, accepted rows then refused ones."""

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        scorers: dict[pa.Schema, Scorer] = {}
        for batch in batches:
            inputs = batch.schema.remove(batch.schema.get_field_index(ROW_COLUMN))
            scorer = scorers.get(inputs)
            if scorer is None:
                scorer = scorers[inputs] = _scorer(
                    broadcast.value, inputs, keep, id_column, prediction
                )
            table = pa.Table.from_batches([batch])
            rows = table.column(ROW_COLUMN).to_numpy()
            result = scorer.score(table.drop_columns([ROW_COLUMN]), rows)
            schema = _combined_schema(scorer)
            scored = result.output.append_column(
                ROW_COLUMN, pa.array(result.rows, pa.int64())
            ).append_column(PROBLEMS_COLUMN, pa.nulls(result.output.num_rows, pa.string()))
            rejects = result.rejects
            count = rejects.num_rows
            refused = [
                rejects.column(f.name) if f.name == id_column else pa.nulls(count, f.type)
                for f in scorer.output_schema
            ]
            refused += [rejects.column(ROW), rejects.column(PROBLEMS)]
            both = pa.concat_tables([scored.cast(schema), pa.table(refused, schema=schema)])
            yield from both.to_batches()

    return score


def spark_schema(schema: pa.Schema) -> Any:
    """A Spark schema for an Arrow one (the scored columns' types)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def scored_and_rejects(
    df: DataFrame,
    artifact_path: Path,
    keep: Sequence[str] | None = None,
    id_column: str | None = None,
    prediction: str = PREDICTION,
) -> tuple[DataFrame, Scorer]:
    """Every row of `df` scored or refused, in one DataFrame: the scored columns, the row
    number and the problems (null for a scored row); and the driver's `Scorer` (its schemas)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    if ROW_COLUMN not in df.columns:
        df = with_row_numbers(df)
    files = artifact_files(artifact_path)
    inputs = to_arrow_schema(df.drop(ROW_COLUMN).schema)
    scorer = _scorer(files, inputs, keep, id_column, prediction)
    broadcast = df.sparkSession.sparkContext.broadcast(files)
    function = _score_batches(broadcast, keep, id_column, prediction)
    combined = df.mapInArrow(function, spark_schema(_combined_schema(scorer)))
    return combined, scorer


def score_dataframe(
    df: DataFrame,
    artifact_path: Path,
    keep: Sequence[str] | None = None,
    id_column: str | None = None,
    prediction: str = PREDICTION,
) -> tuple[DataFrame, DataFrame]:
    """The scored DataFrame and the rejects DataFrame (persist `df` or the results when both
    are used, or the rows are scored twice)."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's usual name

    combined, _ = scored_and_rejects(df, artifact_path, keep, id_column, prediction)
    scored = combined.filter(F.col(PROBLEMS_COLUMN).isNull()).drop(ROW_COLUMN, PROBLEMS_COLUMN)
    ids = [] if id_column is None else [F.col(id_column)]
    rejects = combined.filter(F.col(PROBLEMS_COLUMN).isNotNull()).select(
        F.col(ROW_COLUMN).alias(ROW), *ids, F.col(PROBLEMS_COLUMN).alias(PROBLEMS)
    )
    return scored, rejects


def session(master: str) -> tuple[SparkSession, bool]:
    """The active Spark session, else a new one on `master`; and whether it was made here."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    built = (
        SparkSession.builder.master(master)
        .appName("ml-service score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    built.sparkContext.setLogLevel("ERROR")
    return built, True


def read(spark: SparkSession, path: Path, fmt: str) -> DataFrame:
    """A CSV (every column as text, blank cells null) or Parquet file as a DataFrame."""
    from pyspark.sql.types import StringType, StructField, StructType

    if not path.is_file():
        raise BatchError(f"{path}: no such file")
    if fmt == "parquet":
        return spark.read.parquet(str(path))
    from ml_service.batch.files import csv_header
    from ml_service.model.data import column_names

    names = column_names(csv_header(path))
    schema = StructType([StructField(name, StringType()) for name in names])
    return spark.read.csv(
        str(path), schema=schema, header=True, multiLine=True, mode="FAILFAST", escape='"'
    )


def score_file(job: Job, master: str, show: Show) -> Summary:
    """`ml-service score --engine spark`: score with Spark on `master`, then stream the rows
    back through the driver, a partition at a time, into the same single output and rejects
    files as the local engine writes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ml_service.batch.command import Summary, writers

    started = time.monotonic()
    spark, made = session(master)
    try:
        df = read(spark, job.input, job.input_format)
        try:
            combined, scorer = scored_and_rejects(
                df, job.artifact.path, job.columns, job.id_column, job.prediction
            )
        except BatchError as exc:
            raise BatchError(f"{job.input}: {exc.message}") from None
        schema = _combined_schema(scorer)
        names = scorer.output_schema.names
        scored = rejected = 0
        progress = show.progress(0, "rows")
        with writers(job, scorer) as (output, rejects):
            pending: list[Any] = []

            def flush() -> None:
                nonlocal scored, rejected
                table = pa.Table.from_pylist([row.asDict() for row in pending], schema=schema)
                problems = table.column(PROBLEMS_COLUMN)
                good = problems.is_null()
                output.write(table.filter(good).select(names))
                bad = table.filter(pc.invert(good))
                refused = [bad.column(ROW_COLUMN)]
                if job.id_column is not None:
                    refused.append(bad.column(job.id_column))
                refused.append(bad.column(PROBLEMS_COLUMN))
                rejects.write(pa.Table.from_arrays(refused, schema=scorer.rejects_schema))
                scored += table.num_rows - bad.num_rows
                rejected += bad.num_rows
                progress.update(scored + rejected, 0)
                pending.clear()

            for row in combined.toLocalIterator(prefetchPartitions=True):
                pending.append(row)
                if len(pending) >= job.chunk_rows:
                    flush()
            if pending:
                flush()
            progress.close()
    except Exception as exc:
        if isinstance(exc, BatchError) or type(exc).__module__.startswith("ml_service"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BatchError(f"{job.input}: Spark could not score it ({message})") from None
    finally:
        if made:
            spark.stop()
    return Summary.of(job, "spark", scored, rejected, started)
