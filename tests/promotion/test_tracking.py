"""Tracked training against a real MLflow SQLite store: the run, its candidates as child runs,
its artifacts, and the registered model version that points at the artifact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.conftest import EXAMPLES, Trained
from tests.promotion.conftest import Store, Tracked

from ml_service.cli import main
from ml_service.model import artifact
from ml_service.promotion import tracking


def test_a_run_records_params_metrics_tags_and_artifacts(
    store: Store, linear_housing: Tracked
) -> None:
    mlflow = store.client()
    run = mlflow.get_run(linear_housing.run_id)
    params, values, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["task"] == "regression"
    assert params["target"] == "MEDV"
    assert params["features"] == "CHAS,RM,TAX,PTRATIO,B,LSTAT"
    assert params["candidates"] == "linear"
    assert params["seed"] == "42"
    assert params["gate_min_r2"] == "0.5"
    card = json.loads((linear_housing.path / "card.json").read_text())
    for key, value in card["metrics"].items():
        assert values[f"holdout_{key}"] == pytest.approx(value)
    assert values["cv_rmse_mean"] == pytest.approx(card["cv_metrics"]["rmse_mean"])
    assert "baseline_rmse" in values
    assert tags[tracking.DATA_TAG] == card["training_data"]["sha256"]
    assert tags[tracking.VERSION_TAG] == linear_housing.printed["version"]
    assert run.info.status == "FINISHED"
    top = {f.path for f in mlflow.list_artifacts(linear_housing.run_id)}
    assert {"card.json", "card.md", "report.html", "model"} <= top
    inside = {f.path for f in mlflow.list_artifacts(linear_housing.run_id, "model")}
    assert {f"model/{name}" for name in artifact.REQUIRED} <= inside
    assert "model/manifest.json" in inside


def test_every_candidate_tried_is_a_child_run(store: Store, linear_housing: Tracked) -> None:
    mlflow = store.client()
    parent = mlflow.get_run(linear_housing.run_id)
    children = mlflow.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{linear_housing.run_id}'",
    )
    card = json.loads((linear_housing.path / "card.json").read_text())
    tried = [t for c in card["candidates"] for t in c["tried"]]
    assert len(children) == len(tried) >= 2
    assert all(c.data.params["family"] == "linear" for c in children)
    assert all("cv_rmse_mean" in c.data.metrics for c in children)
    chosen = [c for c in children if c.data.tags["chosen"] == "true"]
    assert len(chosen) == 1
    assert chosen[0].data.metrics["holdout_rmse"] == pytest.approx(card["metrics"]["rmse"])


def test_the_artifact_is_registered_with_its_version_and_manifest_digest(
    store: Store, linear_housing: Tracked
) -> None:
    mlflow = store.client()
    registered = linear_housing.printed["tracking"]
    assert registered["registered_model"] == "housing"
    version = mlflow.get_model_version("housing", registered["registered_version"])
    manifest = (linear_housing.path / artifact.MANIFEST).read_bytes()
    assert version.tags[tracking.VERSION_TAG] == linear_housing.printed["version"]
    assert version.tags[tracking.MANIFEST_TAG] == artifact.digest(manifest)
    assert version.run_id == linear_housing.run_id
    assert version.source.endswith("/model")
    alias = mlflow.get_model_version_by_alias("housing", "champion")
    assert alias.version == version.version
    # MLflow's telemetry is off for the process unless someone chose otherwise.
    assert os.environ[tracking.TELEMETRY_ENV] == "true"


def test_recording_an_existing_artifact_adds_a_version(store: Store, homes: Trained) -> None:
    manifest = artifact.read_manifest(homes.path)
    data = EXAMPLES / "homes.csv"
    first = tracking.record_training(store.uri, data, homes.path, manifest, homes.result)
    again = tracking.record_training(store.uri, data, homes.path, manifest, homes.result)
    assert (first.model, first.experiment) == ("homes", "homes")
    assert int(again.version) == int(first.version) + 1
    # The store's artifacts live beside the database, not in the working directory.
    assert (store.root / "mlartifacts" / first.run_id / "artifacts" / "model").is_dir()


def test_an_unusable_store_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    uri = "sqlite:///" + str(tmp_path / "file" / "mlflow.db")
    argv = ["train", "--out", str(tmp_path / "m"), "--tracking-uri", uri]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ml-service train: error: MLflow at {uri}: ")
    assert "train: reading" not in err
    assert not (tmp_path / "m").exists()


def test_credentials_in_a_uri_are_never_shown() -> None:
    shown = tracking.shown("https://user:secret@mlflow.example.com/path")
    assert shown == "https://***@mlflow.example.com/path"
    assert tracking.shown("sqlite:///x.db") == "sqlite:///x.db"
