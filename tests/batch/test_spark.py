"""Scoring with Spark (real pyspark, local mode) gives what `ml-service score` gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from tests.batch.test_command import HOMES, PENGUINS, bad_homes
from tests.conftest import Trained

from ml_service.batch import spark as batch_spark
from ml_service.batch.scoring import Scorer
from ml_service.cli import main
from ml_service.errors import ArtifactError
from ml_service.model.artifact import MANIFEST, ONNX_FILE, load_serving
from ml_service.predictor import Predictor

pytestmark = pytest.mark.slow


def both(model: Path, source: Path, tmp_path: Path, *options: str) -> tuple[int, int]:
    """Score `source` with each engine; the exit codes (outputs under local/ and spark/)."""
    codes = []
    for engine in ("local", "spark"):
        out = tmp_path / engine
        out.mkdir()
        suffix = ".parquet" if "--parquet-out" in options else ".csv"
        rest = [o for o in options if o != "--parquet-out"]
        codes.append(
            main(
                [
                    "score",
                    "--engine",
                    engine,
                    "--model",
                    str(model),
                    "--input",
                    str(source),
                    "--output",
                    str(out / f"scored{suffix}"),
                    "--quiet",
                    *rest,
                ]
            )
        )
    return codes[0], codes[1]


def same_files(tmp_path: Path) -> None:
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert local == sorted(p.name for p in (tmp_path / "spark").iterdir())
    for name in local:
        a, b = tmp_path / "local" / name, tmp_path / "spark" / name
        if name.endswith(".parquet"):
            assert pq.read_table(a).equals(pq.read_table(b).cast(pq.read_schema(a)))
        else:
            assert a.read_bytes() == b.read_bytes(), name


def test_spark_output_and_rejects_equal_the_local_engines(
    spark: Any, homes: Trained, tmp_path: Path
) -> None:
    source = bad_homes(tmp_path)
    assert both(homes.path, source, tmp_path, "--id-column", "sale") == (3, 3)
    same_files(tmp_path)
    rejects = (tmp_path / "spark" / "scored.rejects.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in rejects[1:]] == ["2", "3", "4"]


def test_a_classifier_from_parquet_equals_the_local_engine(
    spark: Any, penguins: Trained, tmp_path: Path
) -> None:
    source = tmp_path / "penguins.parquet"
    pq.write_table(pacsv.read_csv(PENGUINS), source)
    assert both(penguins.path, source, tmp_path, "--columns", "island", "--parquet-out") == (0, 0)
    same_files(tmp_path)


def test_score_dataframe_numbers_rows_across_partitions(spark: Any, homes: Trained) -> None:
    table = pacsv.read_csv(HOMES, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in pacsv.read_csv(HOMES).column_names}))  # fmt: skip
    records = table.to_pylist()
    records[9]["bedrooms"] = "many"
    records[250]["driveway"] = "maybe"
    rows = spark.sparkContext.parallelize([tuple(r.values()) for r in records], 3)
    df = spark.createDataFrame(rows, list(records[0]))
    assert df.rdd.getNumPartitions() == 3
    scored, rejects = batch_spark.score_dataframe(df, homes.path, keep=["sale"], id_column="sale")
    assert [tuple(r) for r in rejects.collect()] == [
        (10, "10", "bedrooms: must be a number, got a string"),
        (251, "251", "driveway must be one of 'no', 'yes', got 'maybe'"),
    ]
    assert scored.columns == ["sale", "prediction"]
    got = [row.asDict() for row in scored.collect()]
    artifact = load_serving(homes.path)
    spoilt = pa.Table.from_pylist(records, schema=table.schema)
    local = Scorer(artifact, Predictor(artifact), spoilt.schema, keep=["sale"]).score(
        spoilt, np.arange(1, spoilt.num_rows + 1)
    )
    assert got == local.output.to_pylist()


def test_executors_verify_the_shipped_artifact(homes: Trained) -> None:
    files = batch_spark.artifact_files(homes.path)
    assert set(files) >= {MANIFEST, ONNX_FILE}
    tampered = dict(files)
    tampered[ONNX_FILE] = files[ONNX_FILE][:-1] + bytes([files[ONNX_FILE][-1] ^ 1])
    with pytest.raises(ArtifactError, match="modified since training"):
        batch_spark._unpacked(tampered)
    artifact, _ = batch_spark._unpacked(files)
    assert artifact.name == "homes"
