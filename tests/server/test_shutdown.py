"""Graceful shutdown of the real `ml-service serve` process, as a scheduler relies on it.

Kubernetes (and App Service) stop a pod by sending SIGTERM to its first process, waiting
`terminationGracePeriodSeconds`, then SIGKILL. These tests start the production server (gunicorn
master + uvicorn workers) on a free loopback port, put large batches in flight, send SIGTERM to
the master, and check that readiness stops answering 200 at once, that no new connection is
served normally, that every in-flight batch still gets its 200, and that the process exits 0
well inside the configured grace period.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.support.inflight import batch_body, post_batch, ready_status, unread_bytes
from tests.support.server import Server, running_server
from uvicorn.config import Config

from ml_service.config import Settings
from ml_service.http.app import create_app
from ml_service.server.worker import DrainingServer

ROOT = Path(__file__).resolve().parents[2]
GRACE = 20.0
BATCH_ROWS = 10_000

pytestmark = [pytest.mark.server, pytest.mark.slow]


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def tail(server: Server) -> str:
    return server.logs()[-4000:]


@pytest.fixture
def server(model_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """`ml-service serve` with two workers and a GRACE-second drain, ready."""
    env = {
        "ML_SERVICE_WORKERS": "2",
        "ML_SERVICE_GRACEFUL_TIMEOUT": str(GRACE),
        "ML_SERVICE_LOG_LEVEL": "warning",
    }
    with running_server(model_dir, tmp_path, env=env) as running:
        yield running


def test_sigterm_drains_in_flight_batches_then_exits_zero(server: Server) -> None:
    body = batch_body(BATCH_ROWS)
    count = 8
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    release = threading.Event()
    sent = [threading.Event() for _ in range(count)]
    with (
        httpx.Client(limits=limits) as senders,
        ThreadPoolExecutor(count) as pool,
    ):
        futures: list[Future[str]] = [
            pool.submit(post_batch, senders, server.url, body, event, release) for event in sent
        ]
        try:
            # Every batch is in flight: accepted, read by the server up to the held-back byte.
            deadline = time.monotonic() + 30
            while True:
                unread = unread_bytes(port_of(server))
                if all(e.is_set() for e in sent) and len(unread) == count and not any(unread):
                    break
                assert time.monotonic() < deadline, f"batches never all in flight: {unread}"
                time.sleep(0.005)

            sent_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.02)  # the master forwards SIGTERM to the workers

            # Readiness never answers 200 again, and soon nothing new is accepted at all,
            # while every batch is still waiting for its last byte.
            probes = [ready_status(server.url)]
            while probes[-1] not in {"ConnectError", "ConnectTimeout"}:
                assert time.monotonic() < sent_at + 5, f"still accepting: {probes}"
                time.sleep(0.02)
                probes.append(ready_status(server.url))
            assert not any(f.done() for f in futures), "a batch was answered before its end"
            assert server.process.poll() is None, "the server exited with requests in flight"
        finally:
            release.set()
        statuses = [f.result(timeout=GRACE + 10) for f in futures]

    code = server.process.wait(timeout=GRACE + 10)
    took = time.monotonic() - sent_at
    assert statuses == ["200"] * count, f"in-flight batches: {statuses}\n{tail(server)}"
    assert set(probes) <= {"503", "ReadError", "ConnectError", "ConnectTimeout"}, probes
    assert code == 0, f"exit code {code}\n{tail(server)}"
    assert took < GRACE, f"exit took {took:.1f} s, grace period is {GRACE} s"


def test_sigterm_when_idle_exits_at_once(server: Server) -> None:
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=GRACE + 10)
    assert code == 0, tail(server)
    assert time.monotonic() - sent < 5
    assert ready_status(server.url) in {"ConnectError", "ConnectTimeout"}


def test_startup_to_ready_is_fast(model_dir: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    with running_server(model_dir, tmp_path, env={"ML_SERVICE_WORKERS": "2"}):
        took = time.monotonic() - started
    print(f"start-up to ready (two workers): {took:.2f} s")
    assert took < 15, f"start-up to ready took {took:.1f} s"


def test_readiness_turns_503_the_moment_the_worker_is_told_to_stop(model_dir: Path) -> None:
    """The worker's signal handler marks the app draining before uvicorn's next tick."""
    app = create_app(Settings(model_dir=model_dir, workers=1))
    server = DrainingServer(Config(app=app))
    sample = (ROOT / "data" / "sample_request.json").read_bytes()

    async def ask() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ready = await client.get("/health/ready")
            predicted = await client.post("/predict", content=sample)
            return ready.status_code, predicted.status_code

    async def around_the_signal() -> tuple[tuple[int, int], tuple[int, int]]:
        async with app.state.running():
            before = await ask()
            server.handle_exit(signal.SIGTERM, None)
            return before, await ask()

    before, after = asyncio.run(around_the_signal())
    assert before == (200, 200)
    assert server.should_exit
    # Readiness is off at once; a request that still reaches the worker is answered.
    assert after == (503, 200)
