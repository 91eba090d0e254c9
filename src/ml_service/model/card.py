"""The model card: what a model is, how good it is and what it must not be used for."""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from typing import Any

from ml_service.model import metrics
from ml_service.model.schema import REGRESSION, Feature, _fmt
from ml_service.model.training import Evaluation, TrainingResult

LIBRARIES = (
    "ml-service",
    "scikit-learn",
    "numpy",
    "pandas",
    "pyarrow",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "skops",
)


def library_versions() -> dict[str, str]:
    versions = {name: dist_version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def model_card(
    result: TrainingResult, version: str, onnx_agreement: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The card as JSON-ready data (also the source of `card.md` and the report)."""
    schema = result.schema
    task = result.task
    primary = metrics.primary(task)
    dataset = result.dataset
    chosen = result.chosen
    card: dict[str, Any] = {
        "name": schema.name,
        "version": version,
        "description": schema.description,
        "task": task,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_data": {
            "file": dataset.table.path.name,
            "sha256": dataset.table.sha256,
            "rows": len(dataset.y),
            "train_rows": len(result.x_train),
            "test_rows": len(result.y_test),
            "dropped_missing_target": dataset.dropped_missing_target,
        },
        "algorithm": f"scikit-learn {chosen.algorithm(task)} in a Pipeline",
        "family": chosen.family,
        "hyperparameters": {**chosen.hyperparameters, "random_state": result.settings.seed},
        "preprocessing": _preprocessing(result),
        "evaluation": {
            "test_size": result.settings.test_size,
            "seed": result.settings.seed,
            "cv": f"{result.settings.cv_repeats}x repeated {result.settings.cv_folds}-fold",
            "selected_by": f"lowest mean cross-validated {metrics.LABELS[primary]}",
        },
        "metrics": dict(result.holdout),
        "baseline": {
            "strategy": "the training mean"
            if task == REGRESSION
            else "the most frequent class, with the training class shares as probabilities",
            "metrics": dict(result.baseline),
            "cv": result.baseline_cv.summary(),
        },
        "cv_metrics": result.cv_summary(),
        "candidates": [
            {
                "family": family.best.candidate.family,
                "algorithm": family.best.candidate.algorithm(task),
                "hyperparameters": family.best.candidate.hyperparameters,
                "chosen": family.best.candidate == chosen,
                "cv": family.best.summary(),
                "holdout": dict(family.holdout),
                "tried": [_tried(e, primary) for e in family.tried],
            }
            for family in result.families
        ],
        "quality_gate": [check.to_dict() for check in result.checks],
        "onnx_agreement": dict(onnx_agreement or {}),
        "excluded_columns": [e.to_dict() for e in result.plan.excluded],
        "warnings": list(result.warnings),
        "libraries": library_versions(),
        "target": {
            "name": schema.target.name,
            "description": schema.target.description,
            "unit": schema.target.unit,
            **({} if schema.target.classes is None else {"classes": list(schema.target.classes)}),
        },
        "features": [_feature(f) for f in schema.features],
        "intended_use": schema.intended_use,
        "caveats": list(schema.caveats),
    }
    if task != REGRESSION:
        classes = len(schema.target.classes or ())
        card["confusion_matrix"] = {
            "labels": list(schema.target.classes or ()),
            "rows": "actual class",
            "columns": "predicted class",
            "counts": metrics.confusion(result.y_test, result.y_pred, classes),
        }
    return card


def _tried(evaluation: Evaluation, primary: str) -> dict[str, Any]:
    return {
        "hyperparameters": evaluation.candidate.hyperparameters,
        f"{primary}_mean": evaluation.mean(primary),
        f"{primary}_std": evaluation.std(primary),
        "seconds": round(evaluation.seconds, 2),
    }


def _preprocessing(result: TrainingResult) -> list[str]:
    steps = []
    features = result.schema.features
    family = result.chosen.family
    if any(f.categorical for f in features):
        steps.append("categorical features one-hot encoded (missing is a category of its own)")
    if any(f.nullable and not f.categorical for f in features):
        steps.append(
            "missing numbers routed by the trees as learnt"
            if family == "hist_gradient_boosting"
            else "missing numbers filled with the training median"
        )
    if family == "linear":
        steps.append("numeric features standardised")
    return steps


def _feature(f: Feature) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f.name,
        "kind": f.kind,
        "description": f.description,
        "unit": f.unit,
        "accepted": f.describe_range(),
        "nullable": f.nullable,
        "missing": f.reference.missing if f.reference else 0.0,
    }
    if f.categories is not None:
        entry["categories"] = list(f.categories)
    else:
        entry.update(
            {
                "min": f.min if f.allowed is None else min(f.allowed),
                "max": f.max if f.allowed is None else max(f.allowed),
                "train_min": f.train_min,
                "train_max": f.train_max,
            }
        )
    return entry


def seen_in_training(feature: Mapping[str, Any]) -> str:
    """A feature's training values in a few words: a range, or how many categories."""
    if "categories" in feature:
        return f"{len(feature['categories'])} categories"
    if feature.get("train_min") is None:
        return "no values"
    return f"{_fmt(feature['train_min'])} to {_fmt(feature['train_max'])}"


def metric_table(card: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The card's metrics as a table: header labels, and rows (label, formatted values)."""
    names = list(card["metrics"])
    cv = card["cv_metrics"]
    data = card["training_data"]
    base = card["baseline"]
    rows = [
        (f"held-out ({data['test_rows']} rows)", [_value(card["metrics"][m]) for m in names]),
        (
            f"cross-validation, {card['evaluation']['cv']} (mean ± sd)",
            [f"{_value(cv[f'{m}_mean'])} ± {_value(cv[f'{m}_std'])}" for m in names],
        ),
        ("baseline, held-out", [_value(base["metrics"][m]) for m in names]),
    ]
    return [metrics.LABELS[m] for m in names], rows


def candidate_table(card: Mapping[str, Any]) -> tuple[str, list[list[str]]]:
    """Every family at its best setting: CV mean ± sd of the selection metric, and held-out."""
    primary = metrics.primary(card["task"])
    rows = []
    for c in card["candidates"]:
        settings = ", ".join(f"{k}={v}" for k, v in c["hyperparameters"].items())
        cv = c["cv"][primary]
        rows.append(
            [
                c["family"] + (" (chosen)" if c["chosen"] else ""),
                f"{c['algorithm']} ({settings})",
                f"{_value(cv['mean'])} ± {_value(cv['std'])}",
                _value(c["holdout"][primary]),
                str(len(c["tried"])),
            ]
        )
    base = card["baseline"]["cv"][primary]
    rows.append(
        [
            "baseline",
            card["baseline"]["strategy"],
            f"{_value(base['mean'])} ± {_value(base['std'])}",
            _value(card["baseline"]["metrics"][primary]),
            "1",
        ]
    )
    return metrics.LABELS[primary], rows


def _value(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def card_markdown(card: dict[str, Any]) -> str:
    """The card for people."""
    data = card["training_data"]
    target = card["target"]
    header, rows = metric_table(card)
    primary, candidates = candidate_table(card)
    lines = [
        f"# Model card: {card['name']} {card['version']}",
        "",
        card["description"],
        "",
        f"- Trained: {card['trained_at']}",
        f"- Task: {card['task']}"
        + (f", classes {', '.join(map(str, target['classes']))}" if "classes" in target else ""),
        f"- Algorithm: {card['algorithm']} ({_params(card['hyperparameters'])})",
        f"- Preprocessing: {'; '.join(card['preprocessing']) or 'none'}",
        f"- Training data: `{data['file']}` ({data['rows']} rows, SHA-256 `{data['sha256']}`)",
        f"- Rows left out for a missing {target['name']}: {data['dropped_missing_target']}",
        f"- Target: {target['name']}"
        + (f", {target['description']}" if target["description"] else "")
        + (f" ({target['unit']})" if target["unit"] else ""),
        "",
        "## Metrics",
        "",
        "| split | " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(header),
    ]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows]
    lines += [
        "",
        "Quality gate (held-out): "
        + "; ".join(
            f"{c['text']} ({'passed' if c['passed'] else 'failed'})" for c in card["quality_gate"]
        ),
        "",
        "## Candidates",
        "",
        f"Selected by {card['evaluation']['selected_by']}; held-out figures for information.",
        "",
        f"| family | model | CV {primary} | held-out {primary} | settings tried |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in candidates]
    if "confusion_matrix" in card:
        matrix = card["confusion_matrix"]
        labels = [str(label) for label in matrix["labels"]]
        lines += ["", "## Confusion matrix (held-out; rows actual, columns predicted)", ""]
        lines += ["| actual \\ predicted | " + " | ".join(labels) + " |"]
        lines += ["| --- |" + " ---: |" * len(labels)]
        for label, counts in zip(labels, matrix["counts"], strict=True):
            lines.append(f"| {label} | " + " | ".join(str(n) for n in counts) + " |")
    lines += [
        "",
        "## Features",
        "",
        "| feature | kind | meaning | unit | accepted | seen in training | missing |",
        "| --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for f in card["features"]:
        lines.append(
            f"| {f['name']} | {f['kind']} | {f['description']} | {f['unit']} | {f['accepted']} "
            f"| {seen_in_training(f)} | {f['missing']:.1%} |"
        )
    if card["excluded_columns"]:
        lines += ["", "## Columns left out", ""]
        lines += [f"- {e['name']}: {e['reason']}" for e in card["excluded_columns"]]
    if card["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in card["warnings"]]
    lines += ["", "## Intended use", "", card["intended_use"] or "Not stated.", ""]
    lines += ["## Caveats", ""] + ([f"- {c}" for c in card["caveats"]] or ["None stated."]) + [""]
    lines += ["## Libraries", ""]
    lines += [f"- {name} {ver}" for name, ver in card["libraries"].items()] + [""]
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
