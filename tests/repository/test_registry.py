"""The registry: which versions serve, how a request finds its model, what a reload does."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
from tests.support.repository import add_version, stamp

from ml_service.config import Settings
from ml_service.errors import Conflict, NotFound, NotReady
from ml_service.repository import registry as registry_module
from ml_service.repository.registry import Plan, Registry, State


def load(registry: Registry, plan: Plan | None = None) -> Plan:
    """Scan the disk, load what it lists and serve it, as one worker does at start-up."""
    prepared, loaded = registry.prepare(registry.scan(plan or Plan()))
    registry.install(prepared, loaded)
    return prepared


@pytest.fixture
def repository(model_dir: Path, tmp_path: Path) -> Path:
    add_version(model_dir, tmp_path, "v1", created_at=stamp(1))
    add_version(model_dir, tmp_path, "v2", created_at=stamp(2))
    add_version(model_dir, tmp_path, "h1", name="homes", created_at=stamp(1))
    return tmp_path


def test_before_loading_every_request_is_503(repository: Path) -> None:
    registry = Registry(Settings(model_repository=repository))
    with pytest.raises(NotReady, match="still loading"):
        registry.resolve("housing")
    assert not registry.ready


def test_two_models_and_their_versions_serve_side_by_side(repository: Path) -> None:
    registry = Registry(Settings(model_repository=repository, default_model="homes"))
    load(registry)
    assert registry.ready
    assert registry.resolve("housing").version == "v2"
    assert registry.resolve("housing", "v1").version == "v1"
    assert registry.resolve("homes").version == "h1"
    assert registry.resolve(None).name == "homes"
    assert [(e.name, e.version, e.state) for e in registry.index()] == [
        ("homes", "h1", State.READY),
        ("housing", "v1", State.READY),
        ("housing", "v2", State.READY),
    ]
    row = np.array([[0, 6.575, 296, 15.3, 396.9, 4.98]])
    a, b = registry.resolve("housing", "v1"), registry.resolve("housing", "v2")
    assert a is not b
    assert a.predictor.predict(row).values == pytest.approx(b.predictor.predict(row).values)


def test_unknown_names_and_versions_are_404_with_what_exists(repository: Path) -> None:
    registry = Registry(Settings(model_repository=repository))
    load(registry)
    with pytest.raises(
        NotFound, match="no model named 'nope'; this server serves 'homes', 'housing'"
    ):
        registry.resolve("nope")
    with pytest.raises(NotFound, match="has no version 'v9'; it serves 'v1', 'v2'"):
        registry.resolve("housing", "v9")
    with pytest.raises(NotFound, match="several models are served"):
        registry.resolve(None)


def test_a_pinned_default_version_wins_over_the_newest(repository: Path) -> None:
    registry = Registry(
        Settings(model_repository=repository, default_versions="housing=v1")  # type: ignore[arg-type]
    )
    load(registry)
    assert registry.resolve("housing").version == "v1"


def test_a_tampered_new_version_is_refused_and_the_old_one_keeps_serving(
    repository: Path, model_dir: Path
) -> None:
    registry = Registry(Settings(model_repository=repository))
    plan = load(registry)
    bad = add_version(model_dir, repository, "v3", created_at=stamp(3))
    onnx = bad / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    plan = load(registry, registry.scan(plan, ["housing"]))
    assert registry.resolve("housing").version == "v2"
    (entry,) = [e for e in registry.index() if e.version == "v3"]
    assert entry.state == State.UNAVAILABLE
    assert "model.onnx: modified since training" in entry.reason
    with pytest.raises(Conflict, match=r"version 'v3': .*model.onnx.*version 'v2' serves"):
        registry.refused(plan, "housing")


def test_reloading_frees_the_versions_no_longer_served(repository: Path) -> None:
    registry = Registry(Settings(model_repository=repository))
    plan = load(registry)
    old = weakref.ref(registry.resolve("housing", "v1"))
    kept = registry.resolve("housing", "v2")
    (repository / "housing" / "v1").rename(repository / "housing" / ".v1-removed")
    load(registry, registry.scan(plan, ["housing"]))
    gc.collect()
    assert old() is None, "the dropped version is still referenced"
    assert registry.resolve("housing", "v2") is kept, "an unchanged version is not reloaded"
    with pytest.raises(NotFound):
        registry.resolve("housing", "v1")


def test_a_request_in_flight_keeps_its_version_across_a_reload(
    repository: Path, model_dir: Path
) -> None:
    registry = Registry(Settings(model_repository=repository))
    plan = load(registry)
    in_flight = registry.resolve("housing")
    add_version(model_dir, repository, "v3", created_at=stamp(3))
    load(registry, registry.scan(plan, ["housing"]))
    assert registry.resolve("housing").version == "v3"
    assert in_flight.version == "v2"
    row = np.array([[0, 6.575, 296, 15.3, 396.9, 4.98]])
    assert in_flight.predictor.predict(row).values is not None


def test_memory_goes_back_once_the_last_request_on_a_retired_version_ends(
    repository: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    releases: list[int] = []
    monkeypatch.setattr(registry_module, "release_memory", lambda: releases.append(1))
    registry = Registry(Settings(model_repository=repository))
    plan = load(registry)
    in_flight = registry.resolve("housing", "v2")
    add_version(model_dir, repository, "v3", created_at=stamp(3))
    (repository / "housing" / "v2").rename(repository / "housing" / ".v2-removed")
    load(registry, registry.scan(plan, ["housing"]))
    registry.flush()
    assert releases == [], "released while a request still holds the old version"
    del in_flight
    registry.flush()
    registry.flush()
    assert releases == [1], "the retired version's memory is given back once, when it is free"
    (repository / "housing" / "v1").rename(repository / "housing" / ".v1-removed")
    load(registry, registry.scan(registry.snapshot.plan, ["housing"]))
    assert releases == [1, 1], "with no request on it, a version's memory goes back at once"


def test_release_memory_runs_on_this_c_library() -> None:
    registry_module.release_memory()


def test_unloading_a_model_makes_it_404_and_the_index_says_why(repository: Path) -> None:
    registry = Registry(Settings(model_repository=repository))
    plan = load(registry)
    plan = registry.without(plan, "homes")
    prepared, loaded = registry.prepare(plan)
    registry.install(prepared, loaded)
    with pytest.raises(NotFound):
        registry.resolve("homes")
    assert [(e.name, e.state, e.reason) for e in registry.index() if e.name == "homes"] == [
        ("homes", State.UNAVAILABLE, "unloaded")
    ]
    assert registry.resolve(None).name == "housing"
    with pytest.raises(NotFound, match="no model named 'homes' is loaded"):
        registry.without(prepared, "homes")
    assert "homes" not in registry.scan(prepared).models, "a full scan leaves it unloaded"
    assert "homes" in registry.scan(prepared, ["homes"]).models, "loading it by name brings it back"


def test_a_name_missing_from_the_repository_cannot_be_loaded(repository: Path) -> None:
    registry = Registry(Settings(model_repository=repository))
    with pytest.raises(NotFound, match="no model named 'nope' in the model repository"):
        registry.scan(Plan(), ["nope"])


def test_one_artifact_directory_serves_as_before(model_dir: Path, tmp_path: Path) -> None:
    registry = Registry(Settings(model_dir=model_dir))
    load(registry)
    assert registry.resolve(None).name == "housing"
    missing = Registry(Settings(model_dir=tmp_path / "none"))
    load(missing)
    assert not missing.ready
    with pytest.raises(NotReady, match=r"manifest\.json: missing"):
        missing.resolve(None)
