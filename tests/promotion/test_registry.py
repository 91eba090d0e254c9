"""`models:/` references against a real MLflow SQLite store: pulled into a repository and
verified, served by a real server, and refused when tampered with or missing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from tests.promotion.conftest import Store, Tracked
from tests.support.server import running_server

from ml_service.cli import main
from ml_service.config import Settings
from ml_service.errors import TrackingError
from ml_service.model import artifact
from ml_service.promotion import registry, tracking


def registered(linear_housing: Tracked) -> str:
    return str(linear_housing.printed["tracking"]["registered_version"])


@pytest.mark.parametrize("how", ["number", "alias"])
def test_a_registered_version_is_pulled_and_verified(
    how: str, tracking_env: Store, linear_housing: Tracked, tmp_path: Path
) -> None:
    number = registered(linear_housing)
    reference = f"models:/housing/{number}" if how == "number" else "models:/housing@champion"
    pulled = registry.pull(reference, tmp_path)
    version = linear_housing.printed["version"]
    assert pulled.path == tmp_path / "housing" / version
    assert (pulled.registered_version, pulled.downloaded) == (number, True)
    assert artifact.verify(pulled.path).version == version
    assert sorted(p.name for p in tmp_path.joinpath("housing").iterdir()) == [version]
    again = registry.pull(reference, tmp_path)
    assert (again.path, again.downloaded) == (pulled.path, False)


def test_pull_on_the_command_line(
    store: Store, linear_housing: Tracked, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["pull", "models:/housing@champion", "--repository", str(tmp_path)]
    assert main([*argv, "--tracking-uri", store.uri]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["version"] == linear_housing.printed["version"]
    assert Path(printed["path"]).is_dir()


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("models:/nothing/1", "has no registered model 'nothing'"),
        ("models:/housing/999", "registered model 'housing' in MLflow at"),
        ("models:/housing@nobody", "has no alias 'nobody'"),
        ("models:housing", "not a registry reference"),
    ],
)
def test_a_missing_model_version_or_alias_is_a_clear_error(
    reference: str,
    message: str,
    tracking_env: Store,
    linear_housing: Tracked,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["pull", reference, "--repository", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ml-service pull: error: {reference}")
    assert message in err
    assert "Traceback" not in err


def test_a_reference_needs_a_tracking_uri(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(tracking.TRACKING_ENV, raising=False)
    with pytest.raises(TrackingError, match="set MLFLOW_TRACKING_URI"):
        registry.pull("models:/housing/1", tmp_path)


@pytest.fixture
def copy_registered(store: Store, linear_housing: Tracked, tmp_path: Path) -> Iterator[Any]:
    """Register a copy of the champion's artifact (same tags) that a test may damage; the
    versions are deleted afterwards so that no other test finds them."""
    mlflow = store.client()
    made: list[str] = []
    original = mlflow.get_model_version("housing", registered(linear_housing))

    def make(change: Any) -> str:
        copy = tmp_path / f"copy{len(made)}" / "model"
        shutil.copytree(linear_housing.path, copy)
        change(copy)
        version = mlflow.create_model_version(
            "housing", source=copy.as_uri(), tags=dict(original.tags)
        ).version
        made.append(str(version))
        return f"models:/housing/{version}"

    yield make
    for version in made:
        mlflow.delete_model_version("housing", version)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_manifest(copy: Path) -> None:
    manifest = json.loads((copy / artifact.MANIFEST).read_text())
    manifest["created_at"] = "2000-01-01T00:00:00+00:00"
    (copy / artifact.MANIFEST).write_text(json.dumps(manifest))


def add_flavour(copy: Path) -> None:
    (copy / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (copy / "model.pkl").write_bytes(b"\x80\x04N.")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda copy: flip_a_byte(copy / artifact.ONNX_FILE), "modified since training"),
        (rewrite_manifest, "not the"),
        (add_flavour, "MLmodel, model.pkl"),
    ],
    ids=["onnx", "manifest", "flavour"],
)
def test_a_tampered_download_is_refused_and_leaves_nothing(
    change: Any, message: str, copy_registered: Any, tracking_env: Store, tmp_path: Path
) -> None:
    reference = copy_registered(change)
    repository = tmp_path / "repository"
    with pytest.raises(TrackingError, match=message) as refused:
        registry.pull(reference, repository)
    assert refused.value.message.startswith(f"housing version {reference.rsplit('/', 1)[1]}")
    assert list((repository / "housing").iterdir()) == []


def test_a_link_in_a_download_is_refused(linear_housing: Tracked, tmp_path: Path) -> None:
    # MLflow's local store copies a link's target; another store may hand one over as is.
    copy = tmp_path / "model"
    shutil.copytree(linear_housing.path, copy)
    (copy / "report" / "elsewhere.css").symlink_to("/etc/passwd")
    manifest = artifact.digest((copy / artifact.MANIFEST).read_bytes())
    version = linear_housing.printed["version"]
    with pytest.raises(TrackingError, match="not a plain file or directory"):
        registry.verify_download(copy, "housing", version, manifest, "housing version 1")


def test_a_different_artifact_already_in_the_repository_is_refused(
    tracking_env: Store, linear_housing: Tracked, tmp_path: Path
) -> None:
    version = linear_housing.printed["version"]
    target = tmp_path / "housing" / version
    shutil.copytree(linear_housing.path, target)
    rewrite_manifest(target)
    with pytest.raises(TrackingError, match="already holds a different artifact"):
        registry.pull("models:/housing@champion", tmp_path)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ML_SERVICE_REGISTRY_MODELS": "models:/housing/1"}, "needs ML_SERVICE_MODEL_REPOSITORY"),
        (
            {"ML_SERVICE_REGISTRY_MODELS": "models:/housing", "ML_SERVICE_MODEL_REPOSITORY": "r"},
            "is not models:/",
        ),
        (
            {"ML_SERVICE_REGISTRY_MODELS": "models:/housing/1", "ML_SERVICE_MODEL_REPOSITORY": "r"},
            "needs MLFLOW_TRACKING_URI",
        ),
    ],
)
def test_unusable_registry_settings_are_refused(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tracking.TRACKING_ENV, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()  # type: ignore[call-arg]


@pytest.mark.server
def test_the_server_serves_registered_versions(
    store: Store, linear_housing: Tracked, tmp_path: Path
) -> None:
    repository = tmp_path / "repository"
    env = {
        "ML_SERVICE_MODEL_REPOSITORY": str(repository),
        "ML_SERVICE_REGISTRY_MODELS": "models:/housing@champion",
        tracking.TRACKING_ENV: store.uri,
    }
    with running_server(None, tmp_path, env) as server:
        card = httpx.get(server.url + "/v1/models/housing").json()
        assert card["version"] == linear_housing.printed["version"]
        assert "registry_pull" in server.logs()
    assert (repository / "housing" / card["version"] / artifact.MANIFEST).is_file()


@pytest.mark.server
def test_the_server_stops_on_a_reference_it_cannot_serve(
    store: Store, linear_housing: Tracked, tmp_path: Path
) -> None:
    env = {
        "ML_SERVICE_MODEL_REPOSITORY": str(tmp_path / "repository"),
        "ML_SERVICE_REGISTRY_MODELS": "models:/housing@nobody",
        tracking.TRACKING_ENV: store.uri,
    }
    with (
        pytest.raises(AssertionError, match="server exited with 1") as stopped,
        running_server(None, tmp_path, env),
    ):
        pass
    assert "has no alias 'nobody'" in str(stopped.value)
    assert "ml-service serve: error: the server stopped: it could not start" in str(stopped.value)
