"""What the promotion suites share: one real MLflow SQLite store, and a second, weaker housing
model (the linear family only) trained once into it through `ml-service train --tracking-uri`."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DATA, SCHEMA

from ml_service.cli import main


@dataclass(frozen=True)
class Store:
    """A local MLflow tracking store and model registry (SQLite, artifacts beside it)."""

    root: Path

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def client(self) -> Any:
        from ml_service.promotion import tracking

        return tracking.client(self.uri)


@dataclass(frozen=True)
class Tracked:
    """A model trained with tracking: its artifact and what `ml-service train` printed."""

    path: Path
    printed: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.printed["tracking"]["run_id"])


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def linear_housing(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Tracked:
    """Housing with only the linear family (worse than the default model), tracked and
    registered as `housing` version 1 with the alias `champion`."""
    out = tmp_path_factory.mktemp("linear") / "housing"
    argv = [
        "train", "--data", str(DATA), "--schema", str(SCHEMA), "--out", str(out),
        "--candidates", "linear", "--min-r2", "0.5", "--max-rmse", "6",
        "--tracking-uri", store.uri, "--alias", "champion",
    ]  # fmt: skip
    capture = tmp_path_factory.mktemp("linear-out") / "stdout.json"
    with capture.open("w") as handle, contextlib.redirect_stdout(handle):
        assert main(argv) == 0
    return Tracked(out, json.loads(capture.read_text()))


@pytest.fixture
def tracking_env(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """MLFLOW_TRACKING_URI pointing at the session's store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    assert os.environ["MLFLOW_TRACKING_URI"] == store.uri
    return store
