"""From a data file to a verified artifact directory: the whole of `ml-service train`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml_service.errors import TrainingError
from ml_service.model import agreement, artifact
from ml_service.model.card import card_markdown, library_versions, model_card
from ml_service.model.columns import (
    infer_task,
    load_schema_file,
    plan_columns,
    to_dataset,
    training_schema,
)
from ml_service.model.data import read_table
from ml_service.model.report import build_report
from ml_service.model.training import (
    Progress,
    TrainingResult,
    TrainSettings,
    check_quality,
    train,
)
from ml_service.promotion.policy import POLICY_FILE
from ml_service.promotion.policy import from_raw as promotion_policy
from ml_service.repository.layout import version_dir


def build_model(
    data_path: Path,
    out_dir: Path | None,
    settings: TrainSettings,
    schema_path: Path | None = None,
    name: str | None = None,
    progress: Progress = lambda _: None,
    repository: Path | None = None,
) -> tuple[artifact.Manifest, TrainingResult]:
    """Read, choose columns, train, gate, and write the artifact into `out_dir`, or as a new
    version of its model in the model `repository` (`<repository>/<name>/<version>/`). Nothing
    is written when any step fails."""
    schema_file = load_schema_file(schema_path, data_path)
    progress(f"reading {data_path}" + (f" (schema {schema_file.path})" if schema_file else ""))
    table = read_table(data_path)
    plan = plan_columns(table, settings.target, settings.features, settings.exclude, schema_file)
    for left_out in plan.excluded:
        progress(f"left out {left_out.name}: {left_out.reason}")
    task, classes = infer_task(table, plan.target, settings.task)
    schema = training_schema(table, plan, task, classes, schema_file, name)
    where = str(schema_file.path) if schema_file else str(data_path)
    policy = promotion_policy(schema_file.raw if schema_file else {}, schema, where)
    dataset = to_dataset(table, schema, settings.cv_folds, settings.test_size)
    kinds = [f.kind for f in schema.features]
    what = task if classes is None else f"{task} into {len(classes)} classes"
    progress(
        f"{len(dataset.y)} rows, {len(kinds)} features ({kinds.count('numeric')} numeric, "
        f"{kinds.count('categorical')} categorical); target {plan.target}: {what}"
    )
    if dataset.dropped_missing_target:
        progress(f"left out {dataset.dropped_missing_target} rows without a {plan.target}")
    result = train(dataset, settings, plan, schema_file.gate if schema_file else None, progress)
    check_quality(result)
    progress("exporting to ONNX and skops")
    classifier = result.task != "regression"
    onnx_model = artifact.export_onnx(result.pipeline, len(schema.features), classifier)
    rows = np.vstack([result.x_train, result.x_test])
    scale = 0.0 if classifier else float(np.max(np.abs(dataset.y)))
    measured = agreement.measure(onnx_model, result.pipeline, rows, len(classes or ()), scale)
    if not measured["holds"]:
        raise TrainingError(
            f"the ONNX graph disagrees with the scikit-learn pipeline beyond the bound ({measured})"
        )
    version = artifact.model_version(onnx_model, result.schema)
    card = model_card(result, version, measured)
    files = {
        artifact.ONNX_FILE: onnx_model,
        artifact.SKOPS_FILE: artifact.export_skops(result.pipeline),
        artifact.SCHEMA_FILE: _json(result.schema.to_dict()),
        artifact.CARD_JSON: _json(card),
        artifact.CARD_MD: card_markdown(card).encode(),
        artifact.HOLDOUT_FILE: _holdout_rows(result),
        POLICY_FILE: policy.to_bytes(),
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


def _holdout_rows(result: TrainingResult) -> bytes:
    """The held-out rows as the data file had them: the features and the target, as CSV."""
    dataset = result.dataset
    columns = [*result.schema.names, result.schema.target.name]
    rows = dataset.table.frame.loc[dataset.records[result.test_index], columns]
    return str(rows.to_csv(index=False)).encode()


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=False) + "\n").encode()
