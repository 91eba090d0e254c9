"""Training: deterministic, gated, clear about bad data, and fit for other CSVs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ml_service.errors import QualityGateFailed, TrainingError
from ml_service.model import artifact
from ml_service.model.build import build_model
from ml_service.model.training import TrainingResult, TrainSettings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "housing.csv"
SCHEMA = ROOT / "data" / "housing.schema.json"


def test_same_data_and_settings_give_the_same_model(
    trained: tuple[Path, TrainingResult], tmp_path: Path
) -> None:
    first_dir, first = trained
    manifest, second = build_model(DATA, tmp_path / "again", TrainSettings(), SCHEMA)
    assert manifest.version == artifact.read_manifest(first_dir).version
    assert (tmp_path / "again" / "model.onnx").read_bytes() == (
        first_dir / "model.onnx"
    ).read_bytes()
    assert second.holdout == first.holdout
    assert second.cv_folds == first.cv_folds


def test_card_records_what_was_trained(model_dir: Path) -> None:
    card = json.loads((model_dir / "card.json").read_text())
    assert card["training_data"]["sha256"] == artifact.digest(DATA.read_bytes())
    assert set(card["metrics"]) == {"rmse", "mae", "r2"}
    assert {"scikit-learn", "onnxruntime", "python"} <= set(card["libraries"])
    assert [f["name"] for f in card["features"]] == ["CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT"]
    for feature in card["features"]:
        assert feature["train_min"] <= feature["train_max"]
    assert any("B column" in c for c in card["caveats"])
    markdown = (model_dir / "card.md").read_text()
    assert "## Metrics" in markdown
    assert "## Caveats" in markdown
    assert card["version"] in markdown


def test_quality_gate_refuses_a_weak_model_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(QualityGateFailed, match=r"R² 0\.8\d* < 0\.99"):
        build_model(DATA, tmp_path / "m", TrainSettings(min_r2=0.99), SCHEMA)
    with pytest.raises(QualityGateFailed, match=r"RMSE .* > 1\.0"):
        build_model(DATA, tmp_path / "m", TrainSettings(max_rmse=1.0), SCHEMA)
    assert not (tmp_path / "m").exists()


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["A", "Y"], [[1, 2]] * 30, "missing column"),
        (["A", "B", "Y"], [[1, "x", 2]] + [[1, 2, 3]] * 30, r":2: column B holds 'x'"),
        (["A", "B", "Y"], [[1, "nan", 2]] + [[1, 2, 3]] * 30, "not finite"),
        (["A", "B", "Y"], [[1, 2, 3]] * 5, "at least 20"),
    ],
)
def test_bad_csv_is_refused_with_the_row_and_column(
    tmp_path: Path, header: list[str], rows: list[list[object]], message: str
) -> None:
    path = write_csv(tmp_path / "d.csv", header, rows)
    settings = TrainSettings(features=("A", "B"), target="Y")
    with pytest.raises(TrainingError, match=message):
        build_model(path, tmp_path / "m", settings)


def test_a_users_own_csv_trains_with_an_inferred_schema(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rooms = rng.uniform(1, 8, 300)
    garden = rng.integers(0, 2, 300)
    price = 50 * rooms + 30 * garden + rng.normal(0, 5, 300)
    path = write_csv(
        tmp_path / "homes.csv",
        ["ROOMS", "GARDEN", "PRICE"],
        [[r, g, p] for r, g, p in zip(rooms, garden, price, strict=True)],
    )
    settings = TrainSettings(features=("ROOMS", "GARDEN"), target="PRICE", max_rmse=100)
    manifest, result = build_model(path, tmp_path / "homes", settings, name="homes")
    assert manifest.name == "homes"
    schema = artifact.load_serving(tmp_path / "homes").schema
    assert schema.names == ("ROOMS", "GARDEN")
    assert schema.features[1].allowed == (0.0, 1.0)
    assert schema.features[0].min < rooms.min()
    assert rooms.max() < schema.features[0].max
    assert result.holdout.r2 > 0.9


def test_schema_that_does_not_fit_the_data_is_refused(tmp_path: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    schema["features"][1]["max"] = 5
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema))
    with pytest.raises(TrainingError, match="outside the schema's accepted range"):
        build_model(DATA, tmp_path / "m", TrainSettings(), path)
