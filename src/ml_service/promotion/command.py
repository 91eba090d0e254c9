"""`ml-service pull` and `ml-service compare`: the registry and the comparison on the command
line, for people and pipelines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COMMANDS = ("pull",)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = commands.add_parser(
        "pull",
        help="download a registered model version (models:/NAME/VERSION or models:/NAME@ALIAS) "
        "into a model repository, verified",
    )
    pull.add_argument("reference", help="models:/<name>/<version> or models:/<name>@<alias>")
    pull.add_argument(
        "--repository",
        type=Path,
        required=True,
        help="model repository: the artifact lands in DIR/<name>/<artifact version>/",
    )
    pull.add_argument(
        "--tracking-uri", default=None, help="the MLflow registry (default: $MLFLOW_TRACKING_URI)"
    )


def run(args: argparse.Namespace) -> int:
    from ml_service.promotion import registry

    pulled = registry.pull(args.reference, args.repository, args.tracking_uri)
    print(json.dumps(pulled.to_dict()))
    return 0
