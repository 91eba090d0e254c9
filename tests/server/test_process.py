"""The real server process: start-up, probes before and after a model loads, logs, limits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gunicorn.arbiter import Arbiter
from tests.support.apps import BARRIER_ENV
from tests.support.server import BIN, free_port, running_server

from ml_service.model.artifact import load_serving
from ml_service.server import CONFIG

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]
JSON = {"content-type": "application/json"}


def test_serves_the_sample_and_logs_json_lines(
    model_dir: Path, tmp_path: Path, sample: dict[str, object]
) -> None:
    with running_server(model_dir, tmp_path, env={"ML_SERVICE_LOG_INPUTS": "true"}) as server:
        response = httpx.post(
            server.url + "/predict", json=sample, headers={"x-request-id": "trace-1"}
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "trace-1"
        assert 15 < response.json()["prediction"][0] < 40
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert len(lines) == len(server.logs().splitlines()), "every log line is JSON"
    # One line per request; a prediction's line also says what was predicted from what.
    (request,) = [e for e in lines if e.get("event") == "request" and e["request_id"] == "trace-1"]
    assert request["status"] == 200
    assert request["path"] == "/predict"
    assert request["latency_ms"] > 0
    assert request["model"] == "housing"
    assert request["dialect"] == "original"
    assert request["rows"] == 1
    names = load_serving(model_dir).schema.names
    assert request["inputs"] == [[sample[name]["0"] for name in names]]
    assert request["outputs"] == response.json()["prediction"]


def stops_on_its_own(
    command: list[str], model_dir: Path, tmp_path: Path, **extra: str
) -> tuple[int, str]:
    """Run a server command that must stop by itself; its exit status and log."""
    env = {
        **extra,
        **os.environ,
        "PORT": str(free_port()),
        "ML_SERVICE_MODEL_DIR": str(model_dir),
        "ML_SERVICE_WORKERS": "2",
        "ML_SERVICE_METRICS_DIR": str(tmp_path / "metrics"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            log, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the workers too
            log, _ = process.communicate()
            raise AssertionError(f"the server did not stop by itself:\n{log}") from None
    return process.returncode, log


def test_a_worker_whose_model_failed_to_load_stops_the_server(
    model_dir: Path, tmp_path: Path
) -> None:
    """`state.load_failed` after start-up: the worker fails to boot and the master stops, once,
    also when both workers fail at the same moment (the second fails during the master's halt)."""
    command = [str(BIN / "gunicorn"), "--config", CONFIG, "tests.support.apps:load_fails"]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    code, log = stops_on_its_own(command, model_dir, tmp_path, **{BARRIER_ENV: str(barrier)})
    assert code == Arbiter.WORKER_BOOT_ERROR, log
    lines = [json.loads(line) for line in log.splitlines()]
    fatal = [line for line in lines if line.get("event") == "model_load_fatal"]
    assert fatal, log
    assert {line["level"] for line in fatal} == {"critical"}
    # Not a loop of replacements failing the same way: the two first workers, and the end.
    assert sum(line["message"].startswith("Booting worker") for line in lines) == 2, log
    assert "Reason: Worker failed to boot." in log
    assert "Traceback" not in log


def flip_a_byte(artifact: Path) -> None:
    onnx = artifact / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (flip_a_byte, "model.onnx: modified since training"),
        (shutil.rmtree, "manifest.json: missing"),
    ],
    ids=["flipped-byte", "missing"],
)
def test_an_artifact_that_cannot_load_makes_serve_exit_non_zero(
    artifact_copy: Path, tmp_path: Path, damage: Callable[[Path], None], reason: str
) -> None:
    """`ml-service serve` exits 1, saying why, instead of living on unready forever."""
    damage(artifact_copy)
    code, log = stops_on_its_own([str(BIN / "ml-service"), "serve"], artifact_copy, tmp_path)
    assert code == 1, log
    assert reason in log
    assert '"event":"model_load_fatal"' in log
    assert "ml-service serve: error: the server stopped: a worker could not start" in log


def chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


def test_chunked_body_over_the_limit_is_refused(model_dir: Path, tmp_path: Path) -> None:
    env = {"ML_SERVICE_MAX_BODY_BYTES": "100000"}
    with running_server(model_dir, tmp_path, env=env) as server:
        response = httpx.post(server.url + "/predict", content=chunks(10_000_000), headers=JSON)
        assert response.status_code == 413
        assert "100000 bytes" in response.json()["error"]
        declared = httpx.post(server.url + "/predict", content=b" " * 100_001, headers=JSON)
        assert declared.status_code == 413
        # The server is unharmed and still answers.
        assert httpx.get(server.url + "/health/ready").status_code == 200


def test_sigterm_exits_cleanly(model_dir: Path, tmp_path: Path) -> None:
    with running_server(model_dir, tmp_path, env={"ML_SERVICE_WORKERS": "2"}) as server:
        # Both workers serving: one of them answering /health/ready says nothing of the other.
        server.wait_for_log("Application startup complete.", count=2)
        assert server.stop(signal.SIGTERM) == 0
    lines = [json.loads(line) for line in server.logs().splitlines()]
    messages = [line["message"] for line in lines]
    # Each worker stops through the whole exit path (so its last log lines are written), and
    # the master finds nothing to complain about.
    assert sum(m.startswith("Worker exiting (pid: ") for m in messages) == 2, messages
    assert messages.count("Application shutdown complete.") == 2, messages
    assert messages[-1] == "Shutting down: Master"
    assert [line for line in lines if line["level"] not in {"debug", "info"}] == []
    assert not [m for m in messages if "was sent" in m or "Error while closing" in m], messages


def test_refuses_unsafe_settings_before_starting(model_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "ml-service"), "serve"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "ML_SERVICE_MAX_ROWS": "0"},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "max_rows" in result.stderr
