"""Data contract, columns: which columns are features, of what kind, for which task; every
refusal names what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.model.conftest import EXAMPLES, ROOT, write_csv

from ml_service.errors import TrainingError
from ml_service.model.columns import (
    infer_task,
    load_schema_file,
    plan_columns,
    to_dataset,
    training_schema,
)
from ml_service.model.data import read_table
from ml_service.model.schema import ModelSchema

HOUSING = ROOT / "data" / "housing.csv"
HOUSING_SCHEMA = ROOT / "data" / "housing.schema.json"


def prepare(
    path: Path,
    target: str | None,
    features: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
    task: str | None = None,
    schema_path: Path | None = None,
) -> tuple[ModelSchema, object]:
    schema_file = load_schema_file(schema_path, path)
    table = read_table(path)
    plan = plan_columns(table, target, features, exclude, schema_file)
    found_task, classes = infer_task(table, plan.target, task)  # type: ignore[arg-type]
    schema = training_schema(table, plan, found_task, classes, schema_file)
    return schema, plan


def test_homes_defaults_every_column_less_identifier_and_constant() -> None:
    schema, plan = prepare(EXAMPLES / "homes.csv", "price")
    excluded = {e.name: e.reason for e in plan.excluded}  # type: ignore[attr-defined]
    assert excluded == {
        "sale": "row identifier: a different value in every row",
        "country": "constant: 'CA' in every row",
    }
    kinds = {f.name: f.kind for f in schema.features}
    assert kinds["airco"] == "categorical"
    assert kinds["lotsize"] == "numeric"
    airco = schema.features[schema.names.index("airco")]
    assert airco.categories == ("no", "yes")
    assert airco.nullable
    assert not schema.features[schema.names.index("bedrooms")].nullable
    assert schema.features[schema.names.index("lotsize")].nullable
    assert schema.task == "regression"


def test_rows_without_a_target_are_left_out_and_counted() -> None:
    schema, _ = prepare(EXAMPLES / "homes.csv", "price")
    dataset = to_dataset(read_table(EXAMPLES / "homes.csv"), schema)
    assert dataset.dropped_missing_target == 6
    assert len(dataset.y) == 394
    assert np.isfinite(dataset.y).all()


def test_text_target_is_a_classification_with_sorted_labels() -> None:
    schema, plan = prepare(EXAMPLES / "churn.csv", "churned")
    assert schema.target.classes == ("no", "yes")
    assert [e.name for e in plan.excluded] == ["customer"]  # type: ignore[attr-defined]
    dataset = to_dataset(read_table(EXAMPLES / "churn.csv"), schema)
    assert set(dataset.y.tolist()) == {0, 1}


def test_few_whole_numbers_classify_more_are_a_regression_and_task_overrides(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    rows = [[x, int(x > 0.5) + int(x > 0.8), round(10 * x, 3)] for x in rng.random(60)]
    path = write_csv(tmp_path / "d.csv", ["x", "grade", "score"], rows)
    table = read_table(path)
    assert infer_task(table, "grade", None) == ("classification", (0, 1, 2))
    assert infer_task(table, "score", None) == ("regression", None)
    assert infer_task(table, "grade", "regression") == ("regression", None)
    task, classes = infer_task(table, "score", "classification")
    assert task == "classification"
    assert classes is not None
    assert len(classes) > 10


def test_integer_codes_marked_categorical_in_the_schema_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [
        [int(z), float(v), float(v) * 2 + z]
        for z, v in zip(rng.integers(1, 12, 80), rng.random(80), strict=True)
    ]
    path = write_csv(tmp_path / "zones.csv", ["zone", "v", "y"], rows)
    (tmp_path / "zones.schema.json").write_text(
        json.dumps(
            {
                "target": {"name": "y"},
                "features": [{"name": "zone", "kind": "categorical"}, {"name": "v"}],
            }
        )
    )
    schema, _ = prepare(path, None)
    zone = schema.features[0]
    assert zone.kind == "categorical"
    assert zone.categories == tuple(str(z) for z in sorted({r[0] for r in rows}))


def test_fewer_features_than_the_schema_file_lists_is_fine() -> None:
    schema, _ = prepare(HOUSING, None, features=("LSTAT",))
    assert schema.names == ("LSTAT",)
    lstat = schema.features[0]
    assert (lstat.description, lstat.min, lstat.max) == ("Lower status of the population", 0, 100)
    assert schema.target.unit == "$1000s"


def test_features_not_in_the_schema_file_are_inferred() -> None:
    schema, _ = prepare(HOUSING, "MEDV", features=("LSTAT", "NOX"))
    nox = schema.features[1]
    assert nox.description == ""
    assert nox.min < 0.385
    assert nox.max > 0.871


def test_exclude_and_unknown_names(tmp_path: Path) -> None:
    schema, plan = prepare(EXAMPLES / "homes.csv", "price", exclude=("airco", "garagepl"))
    assert "airco" not in schema.names
    assert "garagepl" not in schema.names
    assert {"airco", "garagepl"} <= {e.name for e in plan.excluded}  # type: ignore[attr-defined]
    with pytest.raises(
        TrainingError, match=r"no column\(s\) nope \(asked for\); the columns are sale, "
    ):
        prepare(EXAMPLES / "homes.csv", "price", features=("lotsize", "nope"))
    with pytest.raises(TrainingError, match="price is the target; it cannot also be a feature"):
        prepare(EXAMPLES / "homes.csv", "price", features=("lotsize", "price"))
    with pytest.raises(TrainingError, match="name the target column with --target"):
        prepare(EXAMPLES / "homes.csv", None)


def test_unnamed_index_and_unique_text_are_identifiers(tmp_path: Path) -> None:
    rows = [[i, f"name {i}", i % 3, i * 1.5 + (i % 3)] for i in range(40)]
    path = write_csv(tmp_path / "d.csv", ["", "who", "g", "y"], rows)
    _, plan = prepare(path, "y")
    assert plan.features == ("g",)  # type: ignore[attr-defined]
    reasons = {e.name: e.reason for e in plan.excluded}  # type: ignore[attr-defined]
    assert reasons["Unnamed: 0"] == "unnamed column (a saved row index)"
    assert reasons["who"] == "row identifier: a different value in every row"


def test_chosen_by_name_a_constant_column_stays_with_a_warning(tmp_path: Path) -> None:
    rows = [[i / 7, 7, "a" if i % 2 else "b", i * 2.0] for i in range(40)]
    path = write_csv(tmp_path / "d.csv", ["x", "k", "t", "y"], rows)
    _, plan = prepare(path, "y", features=("x", "k"))
    assert plan.features == ("x", "k")  # type: ignore[attr-defined]
    assert plan.warnings == ("k: constant: 7 in every row; kept because it was chosen by name",)  # type: ignore[attr-defined]
    empty = write_csv(tmp_path / "e.csv", ["x", "k", "y"], [[i, "", i] for i in range(40)])
    with pytest.raises(TrainingError, match="column k is empty: no value in any row"):
        prepare(empty, "y", features=("x", "k"))


def test_text_with_a_new_value_in_most_rows_is_left_out(tmp_path: Path) -> None:
    rows = [[i, f"note {i // 2}", i % 2, float(i)] for i in range(80)]
    path = write_csv(tmp_path / "d.csv", ["x", "note", "flag", "y"], rows)
    _, plan = prepare(path, "y")
    assert "note" not in plan.features  # type: ignore[attr-defined]
    assert any(
        "text with a different value in most rows (40 values in 80)" in e.reason
        for e in plan.excluded
    )  # type: ignore[attr-defined]


def test_a_mostly_numeric_column_names_its_text_cells(tmp_path: Path) -> None:
    rows = [[i, "many" if i in (3, 17) else i % 5, i * 1.0] for i in range(40)]
    path = write_csv(tmp_path / "d.csv", ["x", "rooms", "y"], rows)
    schema, _ = prepare(path, "y")
    with pytest.raises(TrainingError) as refused:
        to_dataset(read_table(path), schema)
    message = str(refused.value)
    assert f"{path}:5: column rooms holds 'many': must be a number, got a string" in message
    assert f"{path}:19: column rooms holds 'many'" in message
    assert "mark it categorical in the schema file" in message


def test_schema_ranges_are_enforced_by_line(tmp_path: Path) -> None:
    schema_text = json.loads(HOUSING_SCHEMA.read_text())
    schema_text["features"][1]["max"] = 5
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema_text))
    schema, _ = prepare(HOUSING, None, schema_path=path)
    with pytest.raises(
        TrainingError,
        match=r"housing\.csv:2: column RM holds '6\.5750': RM must be > 0 and <= 5, got 6\.575",
    ):
        to_dataset(read_table(HOUSING), schema)


@pytest.mark.parametrize(
    ("rows", "target", "message"),
    [
        (
            [[i / 7, 3] for i in range(30)],
            "y",
            r"the target y is 3 in every row; there is nothing to learn",
        ),
        ([[i / 7, ""] for i in range(30)], "y", r"the target y has no value in any row"),
        ([[i / 7, i] for i in range(10)], "y", r"10 data rows with a y; at least 20 are needed"),
        (
            [[i / 7, "a" if i else "b"] for i in range(40)],
            "y",
            r"1 of 2 classes of y have fewer than 8 rows.*'b' \(1 rows\)",
        ),
        (
            [[i / 7, "x" if i == 5 else i * 0.5] for i in range(40)],
            "y",
            r":7: the target y holds 'x', not a number",
        ),
    ],
)
def test_targets_that_cannot_be_learnt(
    tmp_path: Path, rows: list[list[object]], target: str, message: str
) -> None:
    path = write_csv(tmp_path / "d.csv", ["x", "y"], rows)
    with pytest.raises(TrainingError, match=message):
        to_dataset(read_table(path), prepare(path, target)[0])


def test_schema_file_problems(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [[i, i] for i in range(30)])
    (tmp_path / "d.schema.json").write_text("{not json")
    with pytest.raises(TrainingError, match=r"d\.schema\.json: not a usable schema file"):
        load_schema_file(None, data)
    (tmp_path / "d.schema.json").write_text(json.dumps({"quality_gate": {"min_r3": 1}}))
    with pytest.raises(TrainingError, match="quality_gate has min_r3; known: min_r2"):
        load_schema_file(None, data)
    (tmp_path / "d.schema.json").write_text(
        json.dumps({"features": [{"name": "x", "kind": "text"}]})
    )
    with pytest.raises(TrainingError, match="kind must be numeric or categorical"):
        load_schema_file(None, data)
