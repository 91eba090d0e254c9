"""`ml-service score`: predict every row of a CSV or Parquet file of any size.

The file is read in chunks, each scored by `Scorer` (the API's checks and the artifact's ONNX
graph) and appended to the output, so memory stays flat. Rows that fail a check go to the
rejects file with their row number and every problem; the run goes on. The output and rejects
files appear whole under their names at the end, or not at all.

Exit status: 0 every row scored, 3 some rows rejected (the rest scored), 1 the run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ml_service.errors import BatchError

if TYPE_CHECKING:
    from ml_service.batch.files import Format, TableWriter
    from ml_service.batch.progress import Progress
    from ml_service.batch.scoring import Scorer
    from ml_service.model.artifact import ServingArtifact

# The parser is built by every `ml-service` process, `serve` too: the heavy modules (pyarrow,
# pandas, onnxruntime) are imported only when a file is scored.
PREFIX = "ml-service score"
FORMATS = ("csv", "parquet")
PREDICTION = "prediction"
# The rejects file's columns (with the id column between them when one is carried).
ROW, PROBLEMS = "row", "problems"

DEFAULT_CHUNK_ROWS = 50_000
REPOSITORY_ENV = "ML_SERVICE_MODEL_REPOSITORY"
EXIT_SCORED, EXIT_FAILED, EXIT_REJECTS = 0, 1, 3
ENGINES = ("local", "spark")


@dataclass(frozen=True)
class Summary:
    """What a run did, as printed on stderr and written by `--summary-json`."""

    model: str
    version: str
    input: str
    output: str
    rejects: str
    engine: str
    rows: int
    scored: int
    rejected: int
    seconds: float

    @classmethod
    def of(cls, job: Job, engine: str, scored: int, rejected: int, started: float) -> Summary:
        """The summary of `job` scored on `engine`, begun at `started` (`time.monotonic`)."""
        artifact = job.artifact
        return cls(
            artifact.name,
            artifact.version,
            str(job.input),
            str(job.output),
            str(job.rejects),
            engine,
            scored + rejected,
            scored,
            rejected,
            time.monotonic() - started,
        )

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "rows_per_s": round(self.rows_per_s, 1)}

    def describe(self) -> str:
        rejected = f"; {self.rejected} rejected, listed in {self.rejects}" if self.rejected else ""
        return (
            f"{self.scored} of {self.rows} rows scored into {self.output}{rejected} "
            f"({self.seconds:.1f} s, {self.rows_per_s:,.0f} rows/s; "
            f"model {self.model} {self.version})"
        )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `score` subcommand's arguments."""
    parser = commands.add_parser(
        "score",
        help="predict every row of a CSV or Parquet file; exit 0 all scored, 3 some rows "
        "rejected, 1 failed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help="an artifact directory, or a model NAME or NAME/VERSION in the repository "
        "(default version: the newest)",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=None,
        help=f"model repository for a model name (default: ${REPOSITORY_ENV})",
    )
    parser.add_argument("--input", type=Path, required=True, help="CSV or Parquet file")
    parser.add_argument("--output", type=Path, required=True, help="CSV or Parquet file")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="format of the input and output (default: each file's extension)",
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        default=None,
        help="where refused rows go (default: <output stem>.rejects.csv beside the output)",
    )
    parser.add_argument("--id-column", default=None, help="an input column carried into rejects")
    parser.add_argument(
        "--columns",
        default=None,
        help="comma-separated input columns to keep in the output (default: all)",
    )
    parser.add_argument(
        "--prediction-column", default=PREDICTION, help="name of the predicted value's column"
    )
    parser.add_argument(
        "--chunk-rows", type=_count, default=DEFAULT_CHUNK_ROWS, help="rows scored at a time"
    )
    parser.add_argument("--summary-json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--quiet", action="store_true", help="no progress, no summary line")
    parser.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines when stderr is not a terminal",
    )
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument(
        "--master", default="local[*]", help="Spark master URL (with --engine spark)"
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


@dataclass(frozen=True)
class Job:
    """A run's inputs and outputs, resolved and checked before any row is read."""

    artifact: ServingArtifact
    input: Path
    input_format: Format
    output: Path
    output_format: Format
    rejects: Path
    rejects_format: Format
    columns: list[str] | None
    id_column: str | None
    prediction: str
    chunk_rows: int


def job(args: argparse.Namespace) -> Job:
    """The run `args` ask for (`BatchError` when an option or file cannot be used)."""
    from ml_service.batch.files import file_format
    from ml_service.model.artifact import load_serving

    input_format = file_format(args.input, args.format)
    output_format = file_format(args.output, args.format)
    rejects = args.rejects or args.output.with_name(f"{args.output.stem}.rejects.csv")
    rejects_format = file_format(rejects)
    paths = {args.input.resolve(), args.output.resolve(), rejects.resolve()}
    if len(paths) < 3:
        raise BatchError("--input, --output and --rejects must be three different files")
    columns = None
    if args.columns is not None:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    artifact = load_serving(model_path(args.model, args.repository))
    return Job(
        artifact,
        args.input,
        input_format,
        args.output,
        output_format,
        rejects,
        rejects_format,
        columns,
        args.id_column,
        args.prediction_column,
        args.chunk_rows,
    )


def model_path(model: str, repository: Path | None = None) -> Path:
    """The artifact `--model` names: a directory, or NAME[/VERSION] in the repository."""
    from ml_service.model.artifact import MANIFEST
    from ml_service.repository.layout import newest, scan_repository, version_dir

    given = Path(model)
    if (given / MANIFEST).exists():
        return given
    if repository is None and os.environ.get(REPOSITORY_ENV):
        repository = Path(os.environ[REPOSITORY_ENV])
    if repository is None:
        raise BatchError(
            f"--model {model}: no artifact directory there, and no repository to look the name "
            f"up in (--repository or ${REPOSITORY_ENV})"
        )
    name, _, version = model.partition("/")
    versions = scan_repository(repository, [name]).get(name, [])
    if not versions:
        raise BatchError(f"--model {model}: no model {name!r} in the repository {repository}")
    if version:
        found = [v for v in versions if v.version == version]
        if not found:
            known = ", ".join(v.version for v in versions)
            raise BatchError(f"--model {model}: no version {version!r} of {name} (has {known})")
        if found[0].problem:
            raise BatchError(f"--model {model}: {found[0].problem}")
        return found[0].path
    chosen = newest(versions)
    if chosen is None:
        problems = "; ".join(v.problem or "" for v in versions)
        raise BatchError(f"--model {model}: no usable version in {repository} ({problems})")
    return version_dir(repository, name, chosen)


@dataclass(frozen=True)
class Show:
    """How a run shows its progress on stderr."""

    quiet: bool = True
    every: float = 10.0

    def progress(self, total: int, unit: str) -> Progress:
        from ml_service.batch.progress import Progress

        return Progress(total, unit, quiet=self.quiet, every=self.every)


def score_file(job: Job, show: Show | None = None) -> Summary:
    """Score the job's input on this machine into its output and rejects files."""
    import numpy as np

    from ml_service.batch.files import open_reader
    from ml_service.batch.scoring import Scorer
    from ml_service.predictor import Predictor

    started = time.monotonic()
    predictor = Predictor(job.artifact)
    scored = rejected = 0
    with open_reader(job.input, job.input_format, job.chunk_rows) as reader:
        try:
            scorer = Scorer(
                job.artifact, predictor, reader.schema, job.columns, job.id_column, job.prediction
            )
        except BatchError as exc:
            raise BatchError(f"{job.input}: {exc.message}") from None
        with writers(job, scorer) as (output, rejects):
            progress = (show or Show()).progress(reader.total, reader.unit)
            first = 1
            for chunk in reader.chunks():
                rows = np.arange(first, first + chunk.num_rows, dtype=np.int64)
                first += chunk.num_rows
                result = scorer.score(chunk, rows)
                output.write(result.output)
                rejects.write(result.rejects)
                scored += result.output.num_rows
                rejected += result.rejects.num_rows
                progress.update(scored + rejected, reader.done)
            progress.close()
    return Summary.of(job, "local", scored, rejected, started)


@contextlib.contextmanager
def writers(job: Job, scorer: Scorer) -> Iterator[tuple[TableWriter, TableWriter]]:
    """The job's output and rejects writers (both engines'), each file atomic."""
    from ml_service.batch.files import atomic_writer

    with (
        atomic_writer(job.rejects, job.rejects_format, scorer.rejects_schema) as rejects,
        atomic_writer(job.output, job.output_format, scorer.output_schema) as output,
    ):
        yield output, rejects


def run(args: argparse.Namespace) -> int:
    """Run `ml-service score`: the summary on stderr (and in `--summary-json`)."""
    try:
        work = job(args)
        show = Show(args.quiet, args.progress_every)
        if args.engine == "spark":
            from ml_service.batch import spark

            summary = spark.score_file(work, args.master, show)
        else:
            summary = score_file(work, show)
    except ImportError as exc:
        extra = "spark" if args.engine == "spark" else "train"
        raise BatchError(
            f"scoring files needs {exc.name or 'a library'} that is not installed here; "
            f"install ml-service[{extra}]"
        ) from None
    if not args.quiet:
        print(f"{PREFIX}: {summary.describe()}", file=sys.stderr, flush=True)
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return EXIT_REJECTS if summary.rejected else EXIT_SCORED
