"""From a CSV to a verified artifact directory: the whole of `ml-service train`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ml_service.errors import TrainingError
from ml_service.model import artifact
from ml_service.model.card import card_markdown, library_versions, model_card
from ml_service.model.data import read_csv
from ml_service.model.report import build_report
from ml_service.model.schema import ModelSchema
from ml_service.model.training import (
    Progress,
    TrainingResult,
    TrainSettings,
    check_quality,
    infer_schema,
    train,
)
from ml_service.repository.layout import version_dir


def load_schema(schema_path: Path | None, data_path: Path) -> ModelSchema | None:
    """The hand-written schema: the given file, else `<data stem>.schema.json` beside the CSV."""
    path = schema_path or data_path.with_name(f"{data_path.stem}.schema.json")
    if schema_path is None and not path.exists():
        return None
    try:
        return ModelSchema.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{path}: not a usable schema file ({exc})") from exc


def build_model(
    data_path: Path,
    out_dir: Path | None,
    settings: TrainSettings,
    schema_path: Path | None = None,
    name: str | None = None,
    progress: Progress = lambda _: None,
    repository: Path | None = None,
) -> tuple[artifact.Manifest, TrainingResult]:
    """Train, gate, and write the artifact into `out_dir`, or as a new version of its model in
    the model `repository` (`<repository>/<name>/<version>/`). Nothing is written when the gate
    fails."""
    schema = load_schema(schema_path, data_path)
    if schema is not None and settings.features == TrainSettings().features:
        settings = replace(settings, features=schema.names, target=schema.target.name)
    progress(f"reading {data_path}")
    dataset = read_csv(data_path, settings.features, settings.target)
    if schema is None:
        progress(f"no schema file: inferring ranges for {', '.join(settings.features)}")
        schema = infer_schema(name or data_path.stem, dataset)
    if name:
        schema = replace(schema, name=name)
    result = train(dataset, schema, settings, progress)
    check_quality(result)
    progress("exporting to ONNX and skops")
    onnx_model = artifact.export_onnx(result.pipeline, len(settings.features))
    version = artifact.model_version(onnx_model, result.schema)
    card = model_card(result, version)
    files = {
        artifact.ONNX_FILE: onnx_model,
        artifact.SKOPS_FILE: artifact.export_skops(result.pipeline),
        artifact.SCHEMA_FILE: _json(result.schema.to_dict()),
        artifact.CARD_JSON: _json(card),
        artifact.CARD_MD: card_markdown(card).encode(),
    }
    progress("drawing the report")
    files.update(build_report(result, card))
    if repository is not None:
        out_dir = version_dir(repository, result.schema.name, version)
    if out_dir is None:
        raise TrainingError("give an artifact directory or a model repository to write to")
    manifest = artifact.write_artifact(
        out_dir, result.schema.name, version, files, library_versions()
    )
    progress(f"wrote {out_dir} (model {manifest.name} version {manifest.version})")
    return manifest, result


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=False) + "\n").encode()
