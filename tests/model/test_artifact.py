"""The artifact: digests catch tampering, loading never runs untrusted code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import Trained
from tests.model.conftest import EXAMPLES, ROOT

from ml_service.errors import ArtifactError
from ml_service.model import agreement, artifact
from ml_service.model.candidates import FAMILIES, GRIDS, Candidate
from ml_service.model.columns import (
    Dataset,
    infer_task,
    load_schema_file,
    plan_columns,
    to_dataset,
    training_schema,
)
from ml_service.model.data import read_table
from ml_service.model.training import TrainingResult
from ml_service.predictor import Predictor


def test_manifest_lists_every_file_with_its_digest(model_dir: Path) -> None:
    manifest = artifact.verify(model_dir)
    files = {
        str(p.relative_to(model_dir))
        for p in model_dir.rglob("*")
        if p.is_file() and p.name != artifact.MANIFEST
    }
    assert set(manifest.files) == files
    for name, entry in manifest.files.items():
        assert entry["sha256"] == artifact.digest((model_dir / name).read_bytes())


@pytest.mark.parametrize("name", [artifact.ONNX_FILE, artifact.SCHEMA_FILE, artifact.CARD_JSON])
def test_modified_file_is_refused_by_name(artifact_copy: Path, name: str) -> None:
    path = artifact_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{name}: modified since training"):
        artifact.load_serving(artifact_copy)


def test_truncated_file_is_refused(artifact_copy: Path) -> None:
    path = artifact_copy / artifact.ONNX_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"model.onnx: truncated \(100 bytes"):
        artifact.load_serving(artifact_copy)


def test_missing_file_and_missing_manifest(artifact_copy: Path, tmp_path: Path) -> None:
    (artifact_copy / artifact.SCHEMA_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"schema\.json: missing from the artifact"):
        artifact.load_serving(artifact_copy)
    with pytest.raises(ArtifactError, match=r"manifest\.json: missing; train a model first"):
        artifact.load_serving(tmp_path / "nowhere")


def test_incompatible_format_version_is_refused(artifact_copy: Path) -> None:
    path = artifact_copy / artifact.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="made by an incompatible ml-service"):
        artifact.load_serving(artifact_copy)


def test_manifest_cannot_point_outside_the_artifact(artifact_copy: Path) -> None:
    path = artifact_copy / artifact.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="escapes the artifact"):
        artifact.load_serving(artifact_copy)


def test_sklearn_version_mismatch_is_refused(artifact_copy: Path) -> None:
    path = artifact_copy / artifact.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["libraries"]["scikit-learn"] = "0.20.0"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"made with scikit-learn 0\.20\.0"):
        artifact.load_pipeline(artifact_copy)


def test_skops_file_with_untrusted_types_is_refused(artifact_copy: Path) -> None:
    import skops.io
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    class Sneaky(LinearRegression):
        pass

    data = skops.io.dumps(Pipeline([("r", Sneaky().fit([[0.0], [1.0]], [0.0, 1.0]))]))
    manifest_path = artifact_copy / artifact.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][artifact.SKOPS_FILE] = {"sha256": artifact.digest(data), "bytes": len(data)}
    manifest_path.write_text(json.dumps(manifest))
    (artifact_copy / artifact.SKOPS_FILE).write_bytes(data)
    with pytest.raises(ArtifactError, match="outside the trusted list"):
        artifact.load_pipeline(artifact_copy)


def test_onnx_and_scikit_learn_agree(
    trained: tuple[Path, TrainingResult],
) -> None:
    model_dir, result = trained
    predictor = Predictor(artifact.load_serving(model_dir))
    pipeline = artifact.load_pipeline(model_dir)
    rows = np.vstack([result.x_test, result.x_train])
    difference = np.abs(predictor.predict(rows).values - pipeline.predict(rows)).max()
    # float32 sums in onnxruntime vs float64 in scikit-learn: the documented bound, 1e-4 of the
    # largest target (50, in $1000s).
    assert difference < agreement.REGRESSION_TOLERANCE * 50


DATASETS = {"homes": "price", "churn": "churned", "penguins": "species", "housing": "MEDV"}


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    found = {}
    for name, target in DATASETS.items():
        path = ROOT / "data" / f"{name}.csv" if name == "housing" else EXAMPLES / f"{name}.csv"
        schema_file = load_schema_file(None, path)
        table = read_table(path)
        plan = plan_columns(table, target, None, (), schema_file)
        task, classes = infer_task(table, target, None)
        found[name] = to_dataset(table, training_schema(table, plan, task, classes, schema_file))
    return found


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list(DATASETS))
def test_every_family_converts_and_agrees_on_every_kind_of_data(
    datasets: dict[str, Dataset], name: str, family: str
) -> None:
    """Numeric only (housing), text and blanks with a numeric target (homes), a two-class and a
    three-class text target with blanks (churn, penguins): each candidate family's ONNX graph
    gives scikit-learn's answer within the bound, on the rows and on rows made all-missing where
    that is allowed."""
    dataset = datasets[name]
    schema = dataset.schema
    settings = GRIDS[(schema.task, family)][-1]
    pipeline = Candidate(family, tuple(settings.items())).build(schema, 0).fit(dataset.x, dataset.y)
    classes = len(schema.target.classes or ())
    onnx_model = artifact.export_onnx(pipeline, len(schema.features), classifier=classes > 0)
    holes = dataset.x.copy()
    nullable = [j for j, f in enumerate(schema.features) if f.nullable]
    holes[::3, nullable] = np.nan
    rows = np.vstack([dataset.x, holes])
    scale = 0.0 if classes else float(np.abs(dataset.y).max())
    measured = agreement.measure(onnx_model, pipeline, rows, classes, scale)
    assert measured["holds"], measured
    outputs = agreement.run_onnx(onnx_model, rows[:5])
    if classes:
        assert outputs[0].dtype == np.int64
        assert outputs[0].shape == (5,)
        assert outputs[1].shape == (5, classes)
    else:
        assert outputs[0].shape in ((5, 1), (5,))


def test_classifier_graph_names_its_outputs(churn: Trained) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(
        artifact.load_serving(churn.path).onnx_model, providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [(o.name, o.type) for o in session.get_outputs()] == [
        ("label", "tensor(int64)"),
        ("probabilities", "tensor(float)"),
    ]


@pytest.mark.parametrize("name", ["homes", "churn", "penguins"])
def test_skops_loads_every_example_model_with_the_trusted_types(
    name: str, request: pytest.FixtureRequest
) -> None:
    trained: Trained = request.getfixturevalue(name)
    pipeline = artifact.load_pipeline(trained.path)
    rows = trained.result.x_test
    np.testing.assert_array_equal(pipeline.predict(rows), trained.result.pipeline.predict(rows))


def test_a_corrupt_onnx_graph_with_valid_digests_is_refused(artifact_copy: Path) -> None:
    garbage = b"\x08\x07not an onnx graph"
    manifest_path = artifact_copy / artifact.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][artifact.ONNX_FILE] = {"sha256": artifact.digest(garbage), "bytes": 19}
    manifest_path.write_text(json.dumps(manifest))
    (artifact_copy / artifact.ONNX_FILE).write_bytes(garbage)
    with pytest.raises(ArtifactError, match=r"onnxruntime .* cannot load it"):
        Predictor(artifact.load_serving(artifact_copy))


def test_writing_replaces_the_directory_whole(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "m"
    shutil.copytree(model_dir, target)
    (target / "stale.txt").write_text("left over")
    files = {name: (model_dir / name).read_bytes() for name in artifact.REQUIRED}
    artifact.write_artifact(target, "housing", "v", files, {})
    assert not (target / "stale.txt").exists()
    assert artifact.verify(target).version == "v"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_symlinks_and_special_files_are_refused(artifact_copy: Path, tmp_path: Path) -> None:
    from ml_service.errors import ArtifactError
    from ml_service.model.artifact import load_serving

    onnx = artifact_copy / "model.onnx"
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes(onnx.read_bytes())
    onnx.unlink()
    onnx.symlink_to(outside)
    with pytest.raises(ArtifactError, match=r"model\.onnx: a symbolic link"):
        load_serving(artifact_copy)
    onnx.unlink()
    onnx.symlink_to("/dev/zero")
    with pytest.raises(ArtifactError, match="symbolic link"):
        load_serving(artifact_copy)


def test_a_device_or_directory_in_place_of_a_file_is_refused(artifact_copy: Path) -> None:
    from ml_service.errors import ArtifactError
    from ml_service.model.artifact import load_serving

    onnx = artifact_copy / "model.onnx"
    onnx.unlink()
    onnx.mkdir()
    with pytest.raises(ArtifactError, match=r"model\.onnx: (not a regular file|unreadable)"):
        load_serving(artifact_copy)


def test_sizes_are_checked_before_reading(artifact_copy: Path) -> None:
    from ml_service.errors import ArtifactError
    from ml_service.model.artifact import load_serving

    onnx = artifact_copy / "model.onnx"
    with onnx.open("ab") as handle:
        handle.truncate(1 << 30)  # a sparse gigabyte: refused by its size, never read
    with pytest.raises(ArtifactError, match="longer than recorded"):
        load_serving(artifact_copy)


def test_the_manifest_pin_is_checked_before_anything_loads(artifact_copy: Path) -> None:
    import hashlib

    from ml_service.errors import ArtifactError
    from ml_service.model.artifact import load_serving

    manifest = (artifact_copy / "manifest.json").read_bytes()
    pin = hashlib.sha256(manifest).hexdigest()
    assert load_serving(artifact_copy, pin).version
    (artifact_copy / "model.onnx").unlink()  # the pin is checked first: the message says so
    with pytest.raises(ArtifactError, match="not the pinned"):
        load_serving(artifact_copy, "0" * 64)
