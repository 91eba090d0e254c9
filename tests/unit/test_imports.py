"""The server's import graph stays lean: no scikit-learn, matplotlib or pandas in a worker."""

from __future__ import annotations

import subprocess
import sys


def test_serving_never_imports_training_libraries() -> None:
    code = (
        "import sys, ml_service.http.app, ml_service.server.gunicorn_config\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sklearn', 'matplotlib', 'pandas', 'scipy', 'skl2onnx', 'skops'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


def test_the_command_imports_nothing_heavy_before_a_subcommand_runs() -> None:
    # `ml-service serve` builds every subcommand's parser in the process its workers fork from:
    # a thread pool started there (pandas, pyarrow, onnxruntime) breaks in the forked workers.
    code = (
        "import sys\n"
        "from ml_service.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'matplotlib', "
        "'pandas', 'pyarrow', 'onnxruntime', 'scipy', 'mlflow'})\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.splitlines()[-1] == "heavy:"
