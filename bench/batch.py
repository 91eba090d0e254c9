"""The batch section of `make bench`: `ml-service score` against the model alone, and its memory.

- the model alone: the ONNX predictor on 50,000-row matrices of housing rows, in-process;
- `ml-service score` (a child process, its own `--summary-json` figures) on a generated
  1,000,000-row housing CSV, and the same rows as Parquet: rows/s, as a share of the model's;
- peak resident memory of `ml-service score` on 1,000,000 rows and on 10,000 rows (each child
  measured alone, by a fresh parent's `RUSAGE_CHILDREN`);
- Spark: `ml_service.batch.spark.score_dataframe` at `local[1]` and `local[2]` on the same
  rows (when pyspark is installed), written to Parquet by Spark: how throughput scales.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "housing.csv"
LARGE = 1_000_000
SMALL = 10_000
SPARK_ROWS = 200_000
CHUNK = 50_000

_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)

_SPARK = """
import json, os, sys, time
from pathlib import Path
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession
from ml_service.batch.spark import read, score_dataframe
master, source, model, out = sys.argv[1:5]
spark = (SparkSession.builder.master(master).config("spark.ui.enabled", "false")
         .config("spark.pyspark.python", sys.executable).getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = read(spark, Path(source), "parquet").cache()
df.count()
best = None
for _ in range(2):
    start = time.perf_counter()
    scored, rejects = score_dataframe(df, Path(model))
    scored.write.mode("overwrite").parquet(out + "/scored")
    rejects.write.mode("overwrite").csv(out + "/rejects")
    seconds = time.perf_counter() - start
    best = seconds if best is None else min(best, seconds)
print(json.dumps({"rows_per_s": round(df.count() / best)}))
spark.stop()
"""


def housing_rows(rows: int, seed: int = 7) -> Any:
    """`rows` rows drawn from data/housing.csv (with replacement), as a pyarrow table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    source = pacsv.read_csv(DATA)
    picks = np.random.default_rng(seed).integers(0, source.num_rows, rows)
    return source.take(pa.array(picks))


def write_inputs(tmp: Path) -> dict[str, Path]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    large = housing_rows(LARGE)
    paths = {
        "csv": tmp / "housing-1m.csv",
        "parquet": tmp / "housing-1m.parquet",
        "small": tmp / "housing-10k.csv",
        "spark": tmp / "housing-spark.parquet",
    }
    pacsv.write_csv(large, paths["csv"])
    pq.write_table(large, paths["parquet"])
    pacsv.write_csv(large.slice(0, SMALL), paths["small"])
    pq.write_table(large.slice(0, SPARK_ROWS), paths["spark"])
    return paths


def model_rows_per_s(model_dir: Path) -> float:
    """The predictor alone on 50,000-row matrices of the same rows (best of five)."""
    from ml_service.model.artifact import load_serving
    from ml_service.model.data import to_matrix
    from ml_service.predictor import Predictor

    artifact = load_serving(model_dir)
    frame = housing_rows(CHUNK).to_pandas()
    matrix = to_matrix(frame.astype("float64"), artifact.schema.features).matrix
    predictor = Predictor(artifact)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        predictor.predict(matrix)
        best = min(best, time.perf_counter() - start)
    return CHUNK / best


def score(bin_dir: Path, model_dir: Path, source: Path, out: Path) -> tuple[float, int]:
    """`ml-service score` in a child: its rows/s (from its summary) and peak RSS in kB."""
    summary = out.with_suffix(".summary.json")
    command = [
        str(bin_dir / "ml-service"), "score", "--model", str(model_dir), "--input", str(source),
        "--output", str(out), "--quiet", "--summary-json", str(summary),
    ]  # fmt: skip
    found = subprocess.run(
        [sys.executable, "-c", _PEAK, *command], capture_output=True, text=True, check=True
    )
    code, peak = found.stdout.split()
    if code != "0":
        raise RuntimeError(f"ml-service score exited {code} on {source}")
    return float(json.loads(summary.read_text())["rows_per_s"]), int(peak)


def spark_rows_per_s(model_dir: Path, source: Path, out: Path, master: str) -> float | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return None
    found = subprocess.run(
        [sys.executable, "-c", _SPARK, master, str(source), str(model_dir), str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        raise RuntimeError(f"Spark scoring at {master} failed: {found.stderr[-2000:]}")
    return float(json.loads(found.stdout.strip().splitlines()[-1])["rows_per_s"])


def measure(bin_dir: Path, model_dir: Path, tmp: Path, spark: bool = True) -> dict[str, Any]:
    """Every figure of the batch section."""
    paths = write_inputs(tmp)
    model = model_rows_per_s(model_dir)
    csv_rate, csv_peak = score(bin_dir, model_dir, paths["csv"], tmp / "scored-1m.csv")
    parquet_rate, _ = score(bin_dir, model_dir, paths["parquet"], tmp / "scored-1m.parquet")
    _, small_peak = score(bin_dir, model_dir, paths["small"], tmp / "scored-10k.csv")
    out: dict[str, Any] = {
        "model_rows_per_s_50k": round(model),
        "score_csv_rows_per_s_1m": round(csv_rate),
        "score_parquet_rows_per_s_1m": round(parquet_rate),
        "score_csv_share_of_model": round(csv_rate / model, 3),
        "score_parquet_share_of_model": round(parquet_rate / model, 3),
        "score_peak_rss_mb_1m": round(csv_peak / 1024, 1),
        "score_peak_rss_mb_10k": round(small_peak / 1024, 1),
        "score_peak_rss_ratio_1m_to_10k": round(csv_peak / small_peak, 3),
    }
    if spark:
        for cores in (1, 2):
            rate = spark_rows_per_s(
                model_dir, paths["spark"], tmp / f"spark{cores}", f"local[{cores}]"
            )
            if rate is not None:
                out[f"spark_rows_per_s_local{cores}_{SPARK_ROWS // 1000}k"] = round(rate)
    return out
