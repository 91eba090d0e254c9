"""The model card: what a model is, how good it is and what it must not be used for."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from typing import Any

from ml_service.model.schema import _fmt
from ml_service.model.training import TrainingResult

LIBRARIES = ("ml-service", "scikit-learn", "numpy", "skl2onnx", "onnx", "onnxruntime", "skops")


def library_versions() -> dict[str, str]:
    versions = {name: dist_version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def model_card(result: TrainingResult, version: str) -> dict[str, Any]:
    """The card as JSON-ready data (also the source of `card.md`)."""
    schema = result.schema
    return {
        "name": schema.name,
        "version": version,
        "description": schema.description,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_data": {
            "file": result.dataset.path.name,
            "sha256": result.dataset.sha256,
            "rows": len(result.dataset.y),
            "train_rows": len(result.x_train),
            "test_rows": len(result.y_test),
        },
        "algorithm": "scikit-learn GradientBoostingRegressor in a Pipeline",
        "hyperparameters": result.settings.hyperparameters(),
        "evaluation": {
            "test_size": result.settings.test_size,
            "seed": result.settings.seed,
            "cv": f"{result.settings.cv_repeats}x repeated {result.settings.cv_folds}-fold",
        },
        "metrics": result.holdout.as_dict(),
        "cv_metrics": result.cv_summary(),
        "quality_gate": {"min_r2": result.settings.min_r2, "max_rmse": result.settings.max_rmse},
        "libraries": library_versions(),
        "target": {
            "name": schema.target.name,
            "description": schema.target.description,
            "unit": schema.target.unit,
        },
        "features": [
            {
                "name": f.name,
                "description": f.description,
                "unit": f.unit,
                "accepted": f.describe_range(),
                "min": f.min if f.allowed is None else min(f.allowed),
                "max": f.max if f.allowed is None else max(f.allowed),
                "train_min": f.train_min,
                "train_max": f.train_max,
            }
            for f in schema.features
        ],
        "intended_use": schema.intended_use,
        "caveats": list(schema.caveats),
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card for people."""
    m, cv = card["metrics"], card["cv_metrics"]
    data = card["training_data"]
    lines = [
        f"# Model card: {card['name']} {card['version']}",
        "",
        card["description"],
        "",
        f"- Trained: {card['trained_at']}",
        f"- Algorithm: {card['algorithm']} ({_params(card['hyperparameters'])})",
        f"- Training data: `{data['file']}` ({data['rows']} rows, SHA-256 `{data['sha256']}`)",
        f"- Target: {card['target']['name']}, {card['target']['description']} "
        f"({card['target']['unit']})",
        "",
        "## Metrics",
        "",
        "| split | RMSE | MAE | R² |",
        "| --- | ---: | ---: | ---: |",
        f"| held-out ({data['test_rows']} rows) | {m['rmse']:.3f} | {m['mae']:.3f} "
        f"| {m['r2']:.3f} |",
        f"| cross-validation, {card['evaluation']['cv']} (mean ± sd) | "
        f"{cv['rmse_mean']:.3f} ± {cv['rmse_std']:.3f} | {cv['mae_mean']:.3f} ± "
        f"{cv['mae_std']:.3f} | {cv['r2_mean']:.3f} ± {cv['r2_std']:.3f} |",
        "",
        "## Features",
        "",
        "| feature | meaning | unit | accepted | seen in training |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in card["features"]:
        seen = f"{_fmt(f['train_min'])} to {_fmt(f['train_max'])}"
        lines.append(
            f"| {f['name']} | {f['description']} | {f['unit']} | {f['accepted']} | {seen} |"
        )
    lines += ["", "## Intended use", "", card["intended_use"] or "Not stated.", ""]
    lines += ["## Caveats", ""] + [f"- {c}" for c in card["caveats"]] + [""]
    lines += ["## Libraries", ""]
    lines += [f"- {name} {ver}" for name, ver in card["libraries"].items()] + [""]
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
