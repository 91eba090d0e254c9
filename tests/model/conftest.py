"""Models trained once per session on the example files (data/examples/), beside the default
housing model of tests/conftest.py: a regression with text columns and blanks, a two-class and a
three-class classifier with text targets."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml_service.model.build import build_model
from ml_service.model.training import TrainingResult, TrainSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"
# One repeat of 5-fold CV keeps these fixtures quick; the housing model uses the defaults.
QUICK = TrainSettings(cv_repeats=1)


@dataclass(frozen=True)
class Trained:
    path: Path
    result: TrainingResult


def _train(tmp: pytest.TempPathFactory, name: str, target: str) -> Trained:
    out = tmp.mktemp(name) / name
    settings = TrainSettings(target=target, cv_repeats=QUICK.cv_repeats)
    _, result = build_model(EXAMPLES / f"{name}.csv", out, settings)
    return Trained(out, result)


@pytest.fixture(scope="session")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train(tmp_path_factory, "homes", "price")


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train(tmp_path_factory, "churn", "churned")


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train(tmp_path_factory, "penguins", "species")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
