"""`make package` builds the App Service zip, and the zip runs on its own.

The zip is what both pipelines deploy: `requirements.txt` (the hashed runtime lock), the
`ml_service` source and the trained model under `models/housing/`, nothing else. The slow test
does what App Service does with it: unpack, install `requirements.txt` into a fresh virtual
environment (hash-checked), run the documented startup command from the unpacked root, and
predict the original sample.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dist" / "ml-service-app.zip"
READY_TIMEOUT_S = 90.0


def make(*args: str) -> str:
    """Run make in the repository root; return its standard output."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def package() -> Path:
    """The zip `make package` builds (rebuilt only when its inputs changed)."""
    make("package")
    assert PACKAGE.is_file()
    return PACKAGE


def test_package_holds_exactly_the_app_the_lock_and_the_model(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        names = [PurePosixPath(n) for n in archive.namelist() if not n.endswith("/")]
        requirements = archive.read("requirements.txt")
    assert {name.parts[0] for name in names} == {"requirements.txt", "ml_service", "models"}
    assert requirements == (ROOT / "requirements/runtime.txt").read_bytes()
    assert b"--hash=sha256:" in requirements
    assert not any("__pycache__" in n.parts or n.suffix in {".pyc", ".pyo"} for n in names)
    packaged = {n.relative_to("ml_service") for n in names if n.parts[0] == "ml_service"}
    source = ROOT / "src/ml_service"
    expected = {
        PurePosixPath(p.relative_to(source).as_posix())
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }
    assert packaged == expected
    model = {n.relative_to("models/housing") for n in names if n.parts[0] == "models"}
    assert PurePosixPath("manifest.json") in model
    assert PurePosixPath("model.onnx") in model
    assert all(n.parts[:2] == ("models", "housing") for n in names if n.parts[0] == "models")


def test_startup_command_is_the_documented_one() -> None:
    command = make("package-startup-command").strip()
    assert command == (
        "gunicorn --config python:ml_service.server.gunicorn_config "
        "--bind=0.0.0.0:${PORT:-8000} ml_service.http.app:app"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group; SIGKILL it if it outlives 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.server
def test_unpacked_package_installs_starts_and_predicts(package: Path, tmp_path: Path) -> None:
    app = tmp_path / "wwwroot"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(app)
    venv = tmp_path / "antenv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            "requirements.txt",
        ],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-4000:]

    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ML_SERVICE_", "PYTHON", "VIRTUAL_ENV"))
    }
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PORT": str(port),
        "ML_SERVICE_MODEL_DIR": "models/housing",
        "ML_SERVICE_WORKERS": "1",
    }
    command = make("package-startup-command").strip()
    log = (tmp_path / "server.log").open("wb")
    with (
        log,
        subprocess.Popen(
            ["bash", "-c", command],
            cwd=app,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as server,
    ):
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + READY_TIMEOUT_S
            while get_status(f"{base}/health/ready") != 200:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-4000:]
                assert time.monotonic() < deadline, "not ready in time"
                time.sleep(0.5)
            request = urllib.request.Request(
                f"{base}/predict",
                data=(ROOT / "data/sample_request.json").read_bytes(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                body = json.loads(response.read())
            [price] = body["prediction"]
            assert isinstance(price, float)
            assert 5.0 < price < 60.0  # MEDV, in $1000s; the original answered 20.35
        finally:
            stop(server)
