"""The `ml-service` command: train, serve, predict, watch, score, pull, compare."""

from __future__ import annotations

import argparse
import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from ml_service import __version__
from ml_service.errors import ServiceError
from ml_service.model.metrics import GATE_KEYS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ml-service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ml-service {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a model from a CSV or Parquet file into an artifact"
    )
    train.add_argument("--data", type=Path, default=Path("data/housing.csv"))
    train.add_argument(
        "--schema",
        type=Path,
        default=None,
        help="schema file (default: <data>.schema.json beside the data file, if there is one)",
    )
    where = train.add_mutually_exclusive_group()
    where.add_argument(
        "--out", type=Path, default=None, help="artifact directory (default: models/housing)"
    )
    where.add_argument(
        "--repository",
        type=Path,
        default=None,
        help="model repository: write a new version under DIR/<name>/<version>/",
    )
    train.add_argument("--name", default=None, help="model name (default: the schema file's)")
    train.add_argument(
        "--target", default=None, help="target column (default: the schema file's target)"
    )
    train.add_argument(
        "--features",
        default=None,
        help="comma-separated feature columns (default: the schema file's, else every usable "
        "column but the target)",
    )
    train.add_argument("--exclude", default=None, help="comma-separated columns to leave out")
    train.add_argument(
        "--task",
        choices=("regression", "classification"),
        default=None,
        help="default: inferred from the target (text or few whole numbers: classification)",
    )
    train.add_argument(
        "--candidates",
        default=None,
        help="comma-separated model families to try: linear, gradient_boosting, "
        "hist_gradient_boosting, extra_trees (default: all that suit the data's size)",
    )
    gate = train.add_argument_group(
        "quality gate (each replaces the default or schema file's threshold of its metric)"
    )
    for key in GATE_KEYS:
        gate.add_argument(f"--{key.replace('_', '-')}", type=float, default=None, metavar="X")
    train.add_argument("--seed", type=int, default=None)
    tracked = train.add_argument_group("tracking (MLflow; the tracking extra)")
    tracked.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="record the run in MLflow and register the model there (default: "
        "$MLFLOW_TRACKING_URI; off when neither is set), e.g. sqlite:///mlflow.db",
    )
    tracked.add_argument(
        "--experiment", default=None, help="MLflow experiment (default: the model's name)"
    )
    tracked.add_argument(
        "--alias", default=None, help="also point this alias of the registered model at it"
    )

    commands.add_parser("serve", help="serve the model (settings from the environment)")

    predict = commands.add_parser("predict", help="send rows to a running service")
    predict.add_argument("--url", default="http://127.0.0.1:8000")
    predict.add_argument(
        "--file",
        type=Path,
        default=None,
        help="JSON request (any dialect) or CSV (default: the sample request)",
    )
    predict.add_argument("--model", default="housing")
    predict.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        help="file whose first line is the API key (default: $ML_SERVICE_API_KEY, if set)",
    )
    predict.add_argument(
        "--dialect",
        choices=("original", "v1", "v2"),
        default=None,
        help="send a JSON file's rows in this dialect (default: the file's own)",
    )
    predict.add_argument("--retries", type=int, default=5)
    predict.add_argument("--timeout", type=float, default=10.0)
    predict.add_argument(
        "--min", type=float, default=None, dest="low", help="fail if any prediction is below this"
    )
    predict.add_argument(
        "--max", type=float, default=None, dest="high", help="fail if any prediction is above this"
    )

    from ml_service import watch
    from ml_service.batch import command as score
    from ml_service.promotion import command as promotion

    watch.add_parser(commands)
    score.add_parser(commands)
    promotion.add_parser(commands)

    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "serve":
            return _serve()
        if args.command == "watch":
            return watch.run(args)
        if args.command == "score":
            return score.run(args)
        if args.command in promotion.COMMANDS:
            return promotion.run(args)
        return _predict(args)
    except ServiceError as exc:
        print(f"ml-service {args.command}: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ml_service.model.build import build_model
    from ml_service.model.training import TrainSettings
    from ml_service.repository.layout import version_dir

    overrides: dict[str, Any] = {
        "target": args.target,
        "features": _names(args.features),
        "exclude": _names(args.exclude),
        "task": args.task,
        "families": _names(args.candidates),
        "seed": args.seed,
    }
    for key in GATE_KEYS:
        overrides[key] = getattr(args, key)
    settings = replace(TrainSettings(), **{k: v for k, v in overrides.items() if v is not None})

    def progress(message: str) -> None:
        print(f"train: {message}", file=sys.stderr, flush=True)

    from ml_service.promotion import tracking

    uri = tracking.tracking_uri(args.tracking_uri)
    if uri is not None:
        tracking.check(uri)  # MLflow missing or the store unusable: say so before training
    out = None if args.repository else (args.out or Path("models/housing"))
    manifest, result = build_model(
        args.data, out, settings, args.schema, args.name, progress, repository=args.repository
    )
    path: Path = (
        version_dir(args.repository, manifest.name, manifest.version)
        if args.repository is not None
        else args.out or Path("models/housing")
    )
    printed: dict[str, Any] = {
        "name": manifest.name,
        "version": manifest.version,
        "path": str(path),
        "task": result.task,
        "model": result.chosen.family,
        "metrics": dict(result.holdout),
    }
    if uri is not None:
        recorded = tracking.record_training(
            uri, args.data, path, manifest, result, args.experiment, args.alias
        )
        progress(
            f"recorded run {recorded.run_id} in MLflow ({tracking.shown(uri)}); registered "
            f"{recorded.model} version {recorded.version}"
        )
        printed["tracking"] = recorded.to_dict()
    print(json.dumps(printed))
    return 0


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _serve() -> int:
    from ml_service.config import get_settings
    from ml_service.server import serve

    get_settings()  # refuse bad settings before starting anything
    serve()
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ml_service import client

    if args.file is None:
        sample = json.loads(files("ml_service").joinpath("sample_request.json").read_text())
        request = client.classify(sample, "sample request")
    else:
        request = client.read_request(args.file)
    if args.dialect and args.dialect != request.dialect:
        request = client.convert(request, args.dialect)
    answer = client.predict(
        args.url,
        request,
        args.model,
        args.retries,
        args.timeout,
        key=client.api_key(args.api_key_file),
    )
    predictions = answer.predictions
    low = args.low if args.low is not None else float("-inf")
    high = args.high if args.high is not None else float("inf")
    numbers = answer.probabilities is None
    outside = [p for p in predictions if numbers and not low <= p <= high]
    printed = {"url": args.url, "dialect": request.dialect, "predictions": predictions}
    if answer.probabilities is not None:
        printed["probabilities"] = answer.probabilities
    print(json.dumps(printed))
    if outside:
        print(
            f"ml-service predict: error: {len(outside)} prediction(s) outside "
            f"[{args.low}, {args.high}]: {outside[:5]}",
            file=sys.stderr,
        )
        return 1
    return 0
