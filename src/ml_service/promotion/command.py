"""`ml-service pull` and `ml-service compare`: the registry and the comparison on the command
line, for people and pipelines. Nothing heavy is imported until a command runs: every
`ml-service` process builds these parsers, `serve` too, whose workers fork from it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COMMANDS = ("pull", "compare")


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

    compare = commands.add_parser(
        "compare",
        help="score the champion and the challenger on the same rows; exit 0: promote the "
        "challenger, 3: keep the champion, 1: could not compare",
    )
    compare.add_argument(
        "--champion",
        required=True,
        help="an artifact directory, models:/NAME/VERSION, models:/NAME@ALIAS, or url:URL "
        "(the model a running deployment serves)",
    )
    compare.add_argument(
        "--challenger", required=True, help="the same forms; usually the new artifact directory"
    )
    compare.add_argument(
        "--data",
        type=Path,
        default=None,
        help="CSV or Parquet rows with the target (default: the challenger's held-out rows)",
    )
    compare.add_argument(
        "--metric", default=None, help="primary metric (default: the challenger's policy's)"
    )
    compare.add_argument(
        "--margin",
        type=float,
        default=None,
        help="how much worse the challenger may plausibly be, in the metric's units "
        "(default: the challenger's policy's, else 0)",
    )
    compare.add_argument(
        "--resamples", type=int, default=None, help="bootstrap resamples (default: 1000)"
    )
    compare.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    compare.add_argument(
        "--champion-repository",
        type=Path,
        default=None,
        help="model repository or release directory holding the version a url: champion "
        "serves (else the MLflow registry is searched)",
    )
    compare.add_argument(
        "--tracking-uri",
        default=None,
        help="the MLflow registry for models:/ and url: (default: $MLFLOW_TRACKING_URI)",
    )


def run(args: argparse.Namespace) -> int:
    if args.command == "compare":
        return _compare(args)
    from ml_service.promotion import registry

    pulled = registry.pull(args.reference, args.repository, args.tracking_uri)
    print(json.dumps(pulled.to_dict()))
    return 0


def _compare(args: argparse.Namespace) -> int:
    import tempfile

    from ml_service.errors import CompareError
    from ml_service.promotion import compare, sources

    if args.challenger.startswith(sources.URL_PREFIX):
        raise CompareError("the challenger must be an artifact directory or a models:/ reference")
    with tempfile.TemporaryDirectory(prefix="ml-service-compare-") as work:
        where = Path(work)
        challenger = sources.side(
            "challenger", args.challenger, where / "challenger", "", None, args.tracking_uri
        )
        champion = sources.side(
            "champion",
            args.champion,
            where / "champion",
            challenger.artifact.name,
            args.champion_repository,
            args.tracking_uri,
        )
        outcome = compare.compare(
            champion,
            challenger,
            args.data,
            args.metric,
            args.margin,
            args.resamples or compare.DEFAULT_RESAMPLES,
            args.seed,
        )
    print(outcome.text())
    return outcome.status
