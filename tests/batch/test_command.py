"""`ml-service score` end to end: options, rejects, exit codes, refusals, atomic output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import EXAMPLES, Trained
from tests.support.repository import add_version, stamp

from ml_service.batch.files import AtomicFile
from ml_service.batch.scoring import Scorer
from ml_service.cli import main

HOMES = EXAMPLES / "homes.csv"
PENGUINS = EXAMPLES / "penguins.csv"


def score(*args: str | Path) -> int:
    return main(["score", *map(str, args)])


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def lines(path: Path, count: int) -> list[str]:
    return path.read_text().splitlines()[:count]


def bad_homes(tmp_path: Path) -> Path:
    """homes.csv's first five rows with three refused: a word for a number, an unknown
    category, a row of blanks; and a blank line (skipped, not counted)."""
    header, *body = lines(HOMES, 6)
    body[1] = body[1].replace(",2,2,1,", ",two,2,1,")
    body[2] = body[2].replace(",yes,", ",maybe,", 1)
    body[3] = "," * header.count(",")
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header, body[0], "", *body[1:]]) + "\n")
    return path


def test_scores_every_row_in_order_with_the_prediction_added(
    homes: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored.csv"
    assert score("--model", homes.path, "--input", HOMES, "--output", out) == 0
    scored = rows(out)
    source = rows(HOMES)
    assert len(scored) == len(source) == 400
    assert [{k: r[k] for k in source[0]} for r in scored] == source
    assert all(float(r["prediction"]) > 0 for r in scored)
    assert rows(tmp_path / "scored.rejects.csv") == []
    assert "400 of 400 rows scored" in capsys.readouterr().err


def test_refused_rows_go_to_the_rejects_file_with_row_numbers_and_every_problem(
    homes: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored.csv"
    summary = tmp_path / "summary.json"
    code = score(
        "--model", homes.path, "--input", bad_homes(tmp_path), "--output", out,
        "--id-column", "sale", "--summary-json", summary,
    )  # fmt: skip
    assert code == 3
    assert [r["sale"] for r in rows(out)] == ["1", "5"]
    rejects = rows(tmp_path / "scored.rejects.csv")
    assert [(r["row"], r["sale"]) for r in rejects] == [("2", "2"), ("3", "3"), ("4", "")]
    assert rejects[0]["problems"] == "bedrooms: must be a number, got a string"
    assert rejects[1]["problems"] == "driveway must be one of 'no', 'yes', got 'maybe'"
    blank = rejects[2]["problems"].split(" | ")
    assert "bedrooms: must be a number, got null" in blank
    assert "driveway must be a string, one of 'no', 'yes'; got null" in blank
    figures = json.loads(summary.read_text())
    assert (figures["rows"], figures["scored"], figures["rejected"]) == (5, 2, 3)
    assert "2 of 5 rows scored" in capsys.readouterr().err


def test_a_classifier_adds_its_label_and_a_probability_per_class(
    penguins: Trained, tmp_path: Path
) -> None:
    out = tmp_path / "scored.parquet"
    code = score(
        "--model", penguins.path, "--input", PENGUINS, "--output", out, "--columns", "island",
        "--quiet",
    )  # fmt: skip
    assert code == 0
    table = pq.read_table(out)
    classes = penguins.result.schema.target.classes
    assert table.column_names == ["island", "prediction"] + [f"probability_{c}" for c in classes]
    frame = table.to_pandas()
    assert set(frame["prediction"]) <= set(classes)
    sums = frame[[f"probability_{c}" for c in classes]].sum(axis=1)
    assert ((sums - 1).abs() < 1e-5).all()


def test_parquet_in_and_out_keep_the_types_and_rows(homes: Trained, tmp_path: Path) -> None:
    source = tmp_path / "homes.parquet"
    frame = pa.csv.read_csv(HOMES).to_pandas()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)
    out = tmp_path / "scored.parquet"
    assert score("--model", homes.path, "--input", source, "--output", out, "--quiet") == 0
    table = pq.read_table(out)
    typed = pq.read_schema(source)
    assert [table.schema.field(n).type for n in typed.names] == typed.types
    assert table.column("sale").to_pylist() == frame["sale"].tolist()
    csv_out = tmp_path / "scored.csv"
    assert score("--model", homes.path, "--input", HOMES, "--output", csv_out, "--quiet") == 0
    from_csv = [float(r["prediction"]) for r in rows(csv_out)]
    assert table.column("prediction").to_pylist() == from_csv


def test_id_and_columns_choose_the_output_columns(homes: Trained, tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    code = score(
        "--model", homes.path, "--input", HOMES, "--output", out, "--id-column", "sale",
        "--columns", "lotsize,price", "--chunk-rows", "7", "--quiet",
    )  # fmt: skip
    assert code == 0
    scored = rows(out)
    assert list(scored[0]) == ["sale", "lotsize", "price", "prediction"]
    assert [r["sale"] for r in scored] == [str(i) for i in range(1, 401)]


def test_missing_columns_fail_at_once_naming_them_all(
    homes: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "short.csv"
    source.write_text("sale,lotsize,stories\n1,2,3\n")
    out = tmp_path / "scored.csv"
    code = score("--model", homes.path, "--input", source, "--output", out, "--id-column", "key")
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("ml-service score: error: ")
    assert "lacks column(s) bedrooms, bathrms, driveway" in err
    assert "key" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.csv"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("data.json", "{}", "unknown file type '.json'"),
        ("empty.csv", "", "the file is empty"),
        ("broken.parquet", "not parquet", "not a Parquet file"),
        ("ragged.csv", None, "cannot be read"),
    ],
)
def test_unusable_files_fail_with_a_clear_message_and_leave_nothing(
    homes: Trained,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | None,
    words: str,
) -> None:
    source = tmp_path / name
    if content is None:
        header, *body = lines(HOMES, 200)
        body[150] += ",extra"
        content = "\n".join([header, *body]) + "\n"
    source.write_text(content)
    out = tmp_path / "scored.csv"
    code = score("--model", homes.path, "--input", source, "--output", out, "--chunk-rows", "50")
    assert code == 1
    assert words in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_failure_mid_file_leaves_no_output(
    homes: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "scored.csv"
    out.write_text("an earlier run's output\n")
    real = Scorer.score
    calls = []

    def failing(self: Scorer, chunk: pa.Table, numbers: object) -> object:
        calls.append(chunk.num_rows)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, chunk, numbers)  # type: ignore[arg-type]

    monkeypatch.setattr(Scorer, "score", failing)
    code = score("--model", homes.path, "--input", HOMES, "--output", out, "--chunk-rows", "50")
    assert code == 130
    assert calls == [50, 50, 50]
    assert out.read_text() == "an earlier run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]


def test_atomic_file_appears_only_on_commit(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with AtomicFile(target) as file:
        file.temporary.write_text("x")
        assert not target.exists()
        file.commit()
    assert target.read_text() == "x"


def test_a_model_name_is_found_in_the_repository(
    homes: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = tmp_path / "models"
    add_version(homes.path, repository, "v1", name="homes", created_at=stamp(1))
    add_version(homes.path, repository, "v2", name="homes", created_at=stamp(2))
    out = tmp_path / "scored.csv"
    summary = tmp_path / "summary.json"
    args = ("--input", HOMES, "--output", out, "--quiet", "--summary-json", summary)
    assert score("--model", "homes", "--repository", repository, *args) == 0
    assert json.loads(summary.read_text())["version"] == "v2"
    monkeypatch.setenv("ML_SERVICE_MODEL_REPOSITORY", str(repository))
    assert score("--model", "homes/v1", *args) == 0
    assert json.loads(summary.read_text())["version"] == "v1"
    assert score("--model", "homes/v9", *args) == 1
    assert score("--model", "nobody", *args) == 1


def test_progress_lines_when_stderr_is_not_a_terminal(
    homes: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scored.csv"
    code = score(
        "--model", homes.path, "--input", HOMES, "--output", out, "--chunk-rows", "100",
        "--progress-every", "0",
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err.splitlines()
    progress = [line for line in err if "rows/s," in line and "of the input read" in line]
    assert [line.split(":")[1].split(",")[0].strip() for line in progress] == [
        "100 rows", "200 rows", "300 rows", "400 rows"
    ]  # fmt: skip
    assert "100% of the input read" in progress[-1]
