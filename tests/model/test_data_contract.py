"""The training data honours the schema the service enforces (Made-With-ML: data first)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ml_service.model.schema import ModelSchema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ModelSchema.from_dict(json.loads((ROOT / "data" / "housing.schema.json").read_text()))


def load() -> dict[str, np.ndarray]:
    with (ROOT / "data" / "housing.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return {name: np.array([float(r[name]) for r in rows]) for name in rows[0]}


def test_every_schema_column_and_the_target_exist_and_are_complete() -> None:
    data = load()
    for name in (*SCHEMA.names, SCHEMA.target.name):
        assert name in data
        assert np.isfinite(data[name]).all()
    assert len(data["MEDV"]) == 506


def test_every_training_value_is_inside_the_accepted_range() -> None:
    data = load()
    for feature in SCHEMA.features:
        assert feature.accepts(data[feature.name]).all(), feature.name


def test_target_is_a_plausible_price_in_thousands() -> None:
    medv = load()["MEDV"]
    assert medv.min() >= 5
    assert medv.max() <= 50


def test_schema_documents_every_feature_and_the_caveats() -> None:
    for feature in SCHEMA.features:
        assert feature.description
        assert feature.unit
    text = " ".join(SCHEMA.caveats)
    assert "1970" in text
    assert "B column" in text
    assert SCHEMA.intended_use
