"""The import graphs stay lean: no training libraries in a worker, nothing heavy (or
prometheus_client, whose multi-process directory `serve` sets first) before a subcommand runs,
no training library on the registry side."""

from __future__ import annotations

import subprocess
import sys

import pytest

TRAINING = {"sklearn", "matplotlib", "pandas", "scipy", "skl2onnx", "skops"}
# `ml-service serve` builds every subcommand's parser in the process its workers fork from: a
# thread pool started there (pandas, pyarrow, onnxruntime) breaks in the forked workers.
HEAVY = TRAINING | {"pyarrow", "onnxruntime", "mlflow", "pyspark", "tqdm", "prometheus_client"}
PARSER = (
    "from ml_service.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass"
)


def imported(statement: str, watched: set[str]) -> list[str]:
    """The `watched` top-level modules a fresh interpreter holds after `statement`."""
    code = (
        f"import sys\n{statement}\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & "
        f"set({sorted(watched)!r}))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    found = result.stdout.splitlines()[-1] if result.stdout.strip() else ""
    return [name for name in found.split(",") if name]


@pytest.mark.parametrize(
    ("statement", "watched"),
    [
        ("import ml_service.http.app, ml_service.server.gunicorn_config", TRAINING),
        (PARSER, HEAVY),
        ("import ml_service.promotion.registry", TRAINING | {"mlflow"}),
    ],
    ids=["serving", "the command's parser", "the registry side"],
)
def test_nothing_heavy_is_imported(statement: str, watched: set[str]) -> None:
    assert imported(statement, watched) == []
