"""A `url:` champion: the model a real server process serves, found by its card's version in a
model repository or in the MLflow registry; and what stops the comparison when it cannot be."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.promotion.conftest import Store, Tracked
from tests.support.server import Server, running_server

from ml_service.cli import main
from ml_service.promotion import tracking

KEY = "a-champion-key-0123456789"


@pytest.fixture(scope="module")
def production(
    linear_housing: Tracked, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A real server serving the champion (the linear model), behind an API key."""
    tmp = tmp_path_factory.mktemp("production")
    with running_server(linear_housing.path, tmp, {"ML_SERVICE_API_KEYS": KEY}) as server:
        yield server


def compare(
    capsys: pytest.CaptureFixture[str], server: Server, model_dir: Path, *more: str
) -> tuple[int, str, str]:
    argv = ["compare", "--champion", f"url:{server.url}", "--challenger", str(model_dir)]
    status = main([*argv, "--resamples", "200", *more])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_SERVICE_API_KEY", KEY)
    monkeypatch.delenv(tracking.TRACKING_ENV, raising=False)


@pytest.mark.server
def test_the_served_version_from_a_model_repository(
    capsys: pytest.CaptureFixture[str],
    production: Server,
    linear_housing: Tracked,
    model_dir: Path,
    tmp_path: Path,
    keyed: None,
) -> None:
    version = linear_housing.printed["version"]
    shutil.copytree(linear_housing.path, tmp_path / "housing" / version)
    status, out, err = compare(
        capsys, production, model_dir, "--champion-repository", str(tmp_path)
    )
    assert (status, err) == (0, "")
    assert f"champion:   url:{production.url} → housing {version} (linear)" in out


@pytest.mark.server
def test_the_served_version_from_the_registry(
    capsys: pytest.CaptureFixture[str],
    production: Server,
    store: Store,
    linear_housing: Tracked,
    model_dir: Path,
    keyed: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(tracking.TRACKING_ENV, store.uri)
    status, out, _ = compare(capsys, production, model_dir)
    assert status == 0
    assert f"→ housing {linear_housing.printed['version']} (linear)" in out


@pytest.mark.server
def test_a_served_version_found_nowhere_exits_1(
    capsys: pytest.CaptureFixture[str],
    production: Server,
    linear_housing: Tracked,
    model_dir: Path,
    tmp_path: Path,
    keyed: None,
) -> None:
    status, out, err = compare(
        capsys, production, model_dir, "--champion-repository", str(tmp_path)
    )
    assert (status, out) == (1, "")
    version = linear_housing.printed["version"]
    assert f"the champion serves housing version {version}, whose artifact was not found" in err
    assert f"not in --champion-repository {tmp_path}" in err
    assert "MLFLOW_TRACKING_URI is not set" in err


@pytest.mark.server
def test_without_the_api_key_the_champion_cannot_be_read(
    capsys: pytest.CaptureFixture[str],
    production: Server,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ML_SERVICE_API_KEY", raising=False)
    status, _, err = compare(capsys, production, model_dir)
    assert status == 1
    assert "answered 401: set ML_SERVICE_API_KEY" in err


def test_an_unreachable_champion_exits_1(
    capsys: pytest.CaptureFixture[str], model_dir: Path, keyed: None
) -> None:
    argv = ["compare", "--champion", "url:http://127.0.0.1:9", "--challenger", str(model_dir)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the champion: cannot reach http://127.0.0.1:9/v1/models/housing" in err
    assert "(after 3 attempts)" in err
