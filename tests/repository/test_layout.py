"""The repository on disk: which versions exist, which are usable, which is the newest."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.repository import add_version, stamp

from ml_service.model.artifact import MANIFEST, read_manifest
from ml_service.repository.layout import (
    newest,
    scan_artifact,
    scan_repository,
    version_dir,
)


def test_versions_are_listed_oldest_first_and_the_newest_is_the_default(
    model_dir: Path, tmp_path: Path
) -> None:
    add_version(model_dir, tmp_path, "b2", created_at=stamp(2))
    add_version(model_dir, tmp_path, "a3", created_at=stamp(3))
    add_version(model_dir, tmp_path, "c1", created_at=stamp(1))
    add_version(model_dir, tmp_path, "v1", name="homes", created_at=stamp(1))
    found = scan_repository(tmp_path)
    assert sorted(found) == ["homes", "housing"]
    assert [v.version for v in found["housing"]] == ["c1", "b2", "a3"]
    assert all(v.problem is None for v in found["housing"])
    assert newest(found["housing"]) == "a3"
    assert newest(found["housing"], {"housing": "b2"}) == "b2"
    assert newest(found["housing"], {"housing": "gone"}) is None
    assert version_dir(tmp_path, "homes", "v1") == found["homes"][0].path


def test_half_written_and_foreign_entries_are_not_versions(model_dir: Path, tmp_path: Path) -> None:
    add_version(model_dir, tmp_path, "v1")
    (tmp_path / "housing" / ".v2-staging").mkdir()  # a version being written
    (tmp_path / "housing" / "notes.txt").write_text("not a version")
    (tmp_path / "housing" / "empty").mkdir()  # no manifest
    (tmp_path / ".cache").mkdir()
    (tmp_path / "housing" / "link").symlink_to(tmp_path / "housing" / "v1")
    found = scan_repository(tmp_path)
    assert list(found) == ["housing"]
    assert [v.version for v in found["housing"]] == ["v1"]


def test_a_version_in_the_wrong_place_is_flagged_with_where_it_belongs(
    model_dir: Path, tmp_path: Path
) -> None:
    target = add_version(model_dir, tmp_path, "v1")
    target.rename(tmp_path / "housing" / "renamed")
    manifest = tmp_path / "housing" / "broken"
    manifest.mkdir()
    (manifest / MANIFEST).write_text("{")
    by_version = {v.version: v for v in scan_repository(tmp_path)["housing"]}
    assert "move it to housing/v1" in (by_version["renamed"].problem or "")
    assert "not valid JSON" in (by_version["broken"].problem or "")
    assert newest(by_version.values()) is None


def test_names_asked_for_but_absent_are_empty(tmp_path: Path) -> None:
    assert scan_repository(tmp_path, ["housing"]) == {"housing": []}


def test_a_single_artifact_names_itself(model_dir: Path, tmp_path: Path) -> None:
    found = scan_artifact(model_dir)
    manifest = read_manifest(model_dir)
    assert (found.name, found.version, found.problem) == ("housing", manifest.version, None)
    missing = scan_artifact(tmp_path / "nothing")
    assert "manifest.json: missing" in (missing.problem or "")
    assert json.loads((model_dir / MANIFEST).read_text())["name"] == "housing"
