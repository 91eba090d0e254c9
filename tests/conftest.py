"""Fixtures shared by every suite: a trained model artifact and an in-process client."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ml_service.config import Settings
from ml_service.http.app import create_app
from ml_service.model.build import build_model
from ml_service.model.training import TrainingResult, TrainSettings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "data" / "examples"
# One repeat of 5-fold CV keeps the example models quick; the housing model uses the defaults.
QUICK = TrainSettings(cv_repeats=1)
DATA = ROOT / "data" / "housing.csv"
SCHEMA = ROOT / "data" / "housing.schema.json"
SAMPLE = json.loads((ROOT / "data" / "sample_request.json").read_text())


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainingResult]:
    """The default model, trained once per test session into a temporary artifact."""
    out = tmp_path_factory.mktemp("model") / "housing"
    _, result = build_model(DATA, out, TrainSettings(), SCHEMA)
    return out, result


@pytest.fixture(scope="session")
def model_dir(trained: tuple[Path, TrainingResult]) -> Path:
    return trained[0]


@pytest.fixture
def artifact_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the artifact that a test may damage."""
    target = tmp_path / "housing"
    shutil.copytree(model_dir, target)
    return target


def make_client(model_dir: Path | None, **overrides: object) -> TestClient:
    """An in-process client of an app serving `model_dir` (or what `overrides` name)."""
    settings = Settings(model_dir=model_dir, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def client(model_dir: Path) -> Iterator[TestClient]:
    """An in-process client for the default model (lifespan run, model loaded and warm)."""
    with make_client(model_dir) as test_client:
        yield test_client


@pytest.fixture
def sample() -> dict[str, dict[str, float]]:
    return json.loads(json.dumps(SAMPLE))


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
