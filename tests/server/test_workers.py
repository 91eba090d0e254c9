"""A worker process that dies is replaced, and the service keeps answering meanwhile.

The test starts the production server with two workers, keeps it under load from several
client threads (each request on its own connection), SIGKILLs one worker, and checks that the
master starts a replacement, that only requests in flight at the moment of the kill failed (at
most one per client thread: the ones the dead worker held), and that every request started
after the kill succeeded.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.support.inflight import batch_body
from tests.support.server import Server, running_server, worker_pids

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "data" / "sample_request.json").read_bytes()
JSON = {"content-type": "application/json"}

pytestmark = [pytest.mark.server, pytest.mark.slow]


@dataclass(frozen=True)
class Outcome:
    """One request: when it started and ended (monotonic seconds) and how it went."""

    start: float
    end: float
    result: str


def wait_for_workers(master: int, count: int, exclude: set[int], deadline: float) -> set[int]:
    """Wait (bounded) until the master has `count` workers, none of them in `exclude`."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        pids = worker_pids(master)
        if len(pids) == count and not pids & exclude:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"workers never were {count} new ones: {worker_pids(master)}")


def load(server: Server, path: str, body: bytes, stop: threading.Event, out: list[Outcome]) -> None:
    """Send `body` to `path` back to back, each on a new connection, until `stop` (bounded)."""
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(limits=limits, timeout=30) as client:
        for _ in range(10_000):
            if stop.is_set():
                return
            start = time.monotonic()
            try:
                status = str(client.post(server.url + path, content=body, headers=JSON).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            out.append(Outcome(start, time.monotonic(), status))


def test_a_killed_worker_is_replaced_and_only_its_requests_fail(
    model_dir: Path, tmp_path: Path
) -> None:
    env = {"ML_SERVICE_WORKERS": "2", "ML_SERVICE_LOG_LEVEL": "warning"}
    with running_server(model_dir, tmp_path, env=env) as server:
        master = server.process.pid
        before = wait_for_workers(master, 2, set(), deadline=30)

        stop = threading.Event()
        outcomes: list[list[Outcome]] = [[] for _ in range(6)]
        plan = [("/predict", SAMPLE)] * 4 + [("/v1/models/housing:predict", batch_body(2000))] * 2
        threads = [
            threading.Thread(target=load, args=(server, path, body, stop, out), daemon=True)
            for (path, body), out in zip(plan, outcomes, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.5)
            victim = min(before)
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            after = wait_for_workers(master, 2, {victim}, deadline=60)
            replaced_at = time.monotonic()
            server.wait_for("/health/ready")
            time.sleep(1.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert server.process.poll() is None, "the master died with its worker"
        assert len(after - before) == 1, f"workers before {before}, after {after}"

    every = [o for out in outcomes for o in out]
    failed = [o for o in every if o.result != "200"]
    # Only requests in flight when the worker died may fail: at most one per client thread.
    for o in failed:
        assert o.start <= killed_at <= o.end, f"{o} failed but was not in flight at the kill"
    for out in outcomes:
        assert sum(o.result != "200" for o in out) <= 1
    # The service kept answering: while the replacement started, and after it.
    later = [o for o in every if o.start > killed_at]
    assert later, "no request was sent after the kill"
    assert all(o.result == "200" for o in later), [o for o in later if o.result != "200"]
    assert any(o.start < killed_at + 1 for o in later), "nothing was sent while it restarted"
    assert len(every) - len(failed) >= 20
    print(
        f"{len(every)} requests, {len(failed)} failed (in flight on the killed worker), "
        f"replacement after {replaced_at - killed_at:.2f} s"
    )
