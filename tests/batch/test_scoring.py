"""A scored file gives the API's answers row by row, and refuses the rows the API refuses with
the same words."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import DATA, EXAMPLES, Trained, make_client

from ml_service import client
from ml_service.batch.scoring import SEPARATOR, Scorer, prediction_columns, problem_text
from ml_service.cli import main
from ml_service.errors import BatchError
from ml_service.model.artifact import load_serving
from ml_service.predictor import Predictor


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def spoil(source: Path, target: Path, edits: dict[int, dict[str, str]]) -> Path:
    """`source` with some cells replaced: {data row index: {column: text}}."""
    records = read(source)
    for index, cells in edits.items():
        records[index].update(cells)
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return target


def api_answers(model: Path, name: str, rows: list[dict[str, str]], features: list[str]) -> Any:
    """What the API answers for `rows` sent as `ml-service predict --file` sends a CSV."""
    columns = {f: [client._cell(r[f]) for r in rows] for f in features}
    codec = client.BY_DIALECT["v1"]
    with make_client(model) as api:
        return api.post(codec.path(name), json=codec.write(columns))


CASES = {
    "housing": (DATA, {3: {"RM": "lots"}, 10: {"CHAS": "7"}, 20: {"AGE": ""}}),
    "homes": (EXAMPLES / "homes.csv", {0: {"bedrooms": "two"}, 5: {"driveway": "maybe"}}),
    "penguins": (EXAMPLES / "penguins.csv", {2: {"island": "Atlantis", "body_mass_g": "x"}}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_scores_equal_the_apis_answers_row_by_row(
    case: str,
    model_dir: Path,
    homes: Trained,
    penguins: Trained,
    tmp_path: Path,
) -> None:
    model = {"housing": model_dir, "homes": homes.path, "penguins": penguins.path}[case]
    source, edits = CASES[case]
    spoilt = spoil(source, tmp_path / "input.csv", edits)
    out = tmp_path / "scored.csv"
    assert main(["score", "--model", str(model), "--input", str(spoilt), "--output", str(out),
                 "--chunk-rows", "64", "--quiet"]) == 3  # fmt: skip
    artifact = load_serving(model)
    features = list(artifact.schema.names)
    records = read(spoilt)
    rejects = read(tmp_path / "scored.rejects.csv")
    refused = {int(r["row"]) - 1: r["problems"].split(SEPARATOR) for r in rejects}
    assert set(refused) <= set(edits)
    assert refused, "the spoilt rows are refused"

    accepted = [r for i, r in enumerate(records) if i not in refused]
    answer = api_answers(model, artifact.name, accepted, features)
    assert answer.status_code == 200, answer.text
    scored = read(out)
    assert len(scored) == len(accepted)
    body = answer.json()
    if artifact.schema.target.classes is None:
        assert [float(r["prediction"]) for r in scored] == body["predictions"]
    else:
        assert [r["prediction"] for r in scored] == [str(p) for p in body["predictions"]]
        for row, probabilities in zip(scored, body["probabilities"], strict=True):
            for label, p in probabilities.items():
                assert math.isclose(float(row[f"probability_{label}"]), p, rel_tol=1e-12)

    for index, problems in refused.items():
        answer = api_answers(model, artifact.name, [records[index]], features)
        assert answer.status_code == 422
        words = [problem_text(str(d["loc"][-1]), d["msg"]) for d in answer.json()["details"]]
        assert problems == words


def test_a_chunk_keeps_the_input_types_and_order(homes: Trained) -> None:
    artifact = load_serving(homes.path)
    table = pa.csv.read_csv(EXAMPLES / "homes.csv")
    scorer = Scorer(artifact, Predictor(artifact), table.schema, keep=["sale"], id_column="sale")
    result = scorer.score(table.slice(0, 10), np.arange(101, 111, dtype=np.int64))
    assert result.output.column_names == ["sale", "prediction"]
    assert result.output.column("sale").to_pylist() == list(range(1, 11))
    assert result.rejects.num_rows == 0
    assert result.rejects.schema.names == ["row", "sale", "problems"]


def test_output_columns_that_clash_with_the_input_are_refused(penguins: Trained) -> None:
    artifact = load_serving(penguins.path)
    schema = pa.schema([(n, pa.string()) for n in (*artifact.schema.names, "prediction")])
    with pytest.raises(BatchError, match="already has column"):
        Scorer(artifact, Predictor(artifact), schema)
    names = [f.name for f in prediction_columns(artifact.schema, "species_predicted")]
    assert names[0] == "species_predicted"
    assert names[1:] == [f"probability_{c}" for c in artifact.schema.target.classes or ()]


def test_problem_text_names_the_column_once() -> None:
    assert problem_text("RM", "must be a number, got a string") == (
        "RM: must be a number, got a string"
    )
    assert problem_text("RM", "RM must be >= 1, got 0") == "RM must be >= 1, got 0"
