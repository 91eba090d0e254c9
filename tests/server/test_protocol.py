"""Slow clients against the real server: header, body and keep-alive deadlines, and the drain.

The deadlines are set short here (the settings' lower bounds are one second) so that the tests
can watch them pass; every wait polls a condition with a bound, and the slow clients trickle
their bytes between polls.
"""

from __future__ import annotations

import json
import selectors
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.rawhttp import Exchange, request
from tests.support.server import Server, peers, poll, running_server

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "data" / "sample_request.json").read_bytes()
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 1.0
KEEPALIVE_TIMEOUT = 1.0
ENV = {
    "ML_SERVICE_WORKERS": "2",
    "ML_SERVICE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "ML_SERVICE_BODY_TIMEOUT": str(BODY_TIMEOUT),
    "ML_SERVICE_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
}
# Time a closing may take beyond its deadline on a busy two-core machine.
SLACK = 1.5

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(model_dir, tmp_path_factory.mktemp("protocol"), env=ENV) as running:
        yield running


def trickle(clients: list[Exchange], byte: bytes, deadline: float) -> dict[Exchange, float]:
    """Send `byte` on each connection every 0.2 s until the server answers or closes it.

    Returns when each one had something to read (monotonic seconds).
    """
    heard: dict[Exchange, float] = {}
    with selectors.DefaultSelector() as selector:
        for client in clients:
            selector.register(client.sock, selectors.EVENT_READ, client)
        end = time.monotonic() + deadline
        while len(heard) < len(clients):
            assert time.monotonic() < end, f"{len(clients) - len(heard)} never heard from"
            for key, _ in selector.select(timeout=0.2):
                heard[key.data] = time.monotonic()
                selector.unregister(key.fileobj)
            for client in clients:
                if client not in heard:
                    try:
                        client.sock.send(byte)
                    except OSError:
                        heard[client] = time.monotonic()
                        selector.unregister(client.sock)
    return heard


def test_slow_headers_are_cut_off_and_do_not_delay_other_requests(server: Server) -> None:
    latencies: list[float] = []
    statuses: list[int] = []
    done = threading.Event()

    def normal_requests() -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(limits=limits, timeout=10) as client:
            while not done.is_set():
                start = time.monotonic()
                response = client.post(server.url + "/predict", content=SAMPLE)
                latencies.append(time.monotonic() - start)
                statuses.append(response.status_code)

    clients, opened = [], {}
    for _ in range(500):
        connecting = time.monotonic()  # the server's deadline starts when it accepts, later
        client = Exchange(server.port)
        clients.append(client)
        opened[client] = connecting
    thread = threading.Thread(target=normal_requests, daemon=True)
    try:
        for client in clients:
            client.send(b"POST /predict HTTP/1.1\r\nhost: test\r\nx-pad: ")
        thread.start()
        closed = trickle(clients, b"x", deadline=HEADER_TIMEOUT + 30)
        assert all(client.closed_by_server() for client in clients), "answered, not closed"
    finally:
        done.set()
        thread.join(timeout=30)
        for client in clients:
            client.close()

    after = sorted(closed[c] - opened[c] for c in clients)
    # The server's timer runs on its event loop's clock, cached per loop turn: allow it 50 ms.
    assert after[0] >= HEADER_TIMEOUT - 0.05, f"closed after {after[0]:.3f} s"
    assert after[-1] < HEADER_TIMEOUT + SLACK, f"one closed only after {after[-1]:.2f} s"
    assert set(statuses) == {200}, statuses
    assert max(latencies) < 1.0, f"slowest normal request: {max(latencies):.3f} s"
    assert len(latencies) >= 10
    print(
        f"500 slow connections closed {after[0]:.2f}-{after[-1]:.2f} s after connecting; "
        f"{len(latencies)} normal requests meanwhile, slowest {max(latencies) * 1000:.0f} ms"
    )
    server.wait_for_log('"phase":"headers"', count=500)


def test_a_late_body_gets_408_and_its_connection_closed(server: Server) -> None:
    body = SAMPLE * 2
    with Exchange(server.port) as silent, Exchange(server.port) as trickling:
        for client in (silent, trickling):
            client.send(request("POST", "/predict", body)[: -len(body) + 10])
        # One sends nothing more; the other keeps sending (slowly) while the answer comes, and
        # goes on once it has come, as a client does that reads only after its upload: the
        # server must not reset the connection (and destroy the 408) for that.
        trickle([trickling], b" ", deadline=BODY_TIMEOUT + 30)
        trickling.send(b" " * 10)
        for client in (silent, trickling):
            answer = client.answer()
            assert answer.status == "408"
            assert dict(answer.headers)["connection"] == "close"
            assert answer.json() == {"error": "the request body did not arrive within 1 s"}
            poll(client.closed_by_server, "closed after the 408")
    server.wait_for_log('"phase":"body"', count=2)
    lines = [json.loads(x) for x in server.logs().splitlines() if '"phase":"body"' in x]
    assert [(line["event"], line["status"]) for line in lines] == [("timeout", 408)] * 2


def test_an_early_answer_to_a_closing_connection_reaches_the_client(server: Server) -> None:
    """A body over the limit is refused before it is read. On a connection that closes after
    its answer, the client is still uploading: it must read the 413, not a reset."""
    body = b" " * 20_000_000  # more than the kernel buffers between the two ends hold
    with Exchange(server.port) as client:
        head = request("POST", "/predict", body).split(b"\r\n\r\n", 1)[0]
        answer = client.exchange(head + b"\r\nconnection: close\r\n\r\n" + body)
        assert answer.status == "413", answer
        assert "bytes" in answer.json()["error"]
        poll(client.closed_by_server, "closed after the 413")


def test_a_body_in_time_is_answered(server: Server) -> None:
    with Exchange(server.port) as client:
        whole = request("POST", "/predict", SAMPLE)
        client.send(whole[:-5])
        client.send(whole[-5:])
        assert client.answer().status == "200"


def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    server: Server,
) -> None:
    with Exchange(server.port) as client:
        assert client.exchange(request("POST", "/predict", SAMPLE)).status == "200"
        answered = time.monotonic()
        poll(client.closed_by_server, "idle connection closed", deadline=KEEPALIVE_TIMEOUT + 30)
        idle = time.monotonic() - answered
    assert KEEPALIVE_TIMEOUT - 0.1 <= idle < KEEPALIVE_TIMEOUT + SLACK, f"{idle:.2f} s"


def refuses(port: int) -> bool:
    """True when a new connection to `port` is refused (one that is accepted is closed)."""
    try:
        with Exchange(port, timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_a_silent_connection_holds_the_drain_no_longer_than_the_header_timeout(
    model_dir: Path, tmp_path: Path
) -> None:
    """A connection accepted before SIGTERM may still send its request (it is answered); one
    that never does is closed at its header deadline, and the server exits then."""
    with (
        running_server(model_dir, tmp_path, env=ENV) as server,
        Exchange(server.port) as silent,
        Exchange(server.port) as late,
    ):
        poll(
            lambda: all(
                (peer := peers(server.port).get(c.port)) and peer.accepted for c in (silent, late)
            ),
            "both connections accepted",
        )
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        poll(lambda: refuses(server.port), "listener closed")
        assert late.exchange(request("POST", "/predict", SAMPLE)).status == "200"
        code = server.process.wait(timeout=HEADER_TIMEOUT + 30)
        took = time.monotonic() - sent
        assert silent.closed_by_server()
    assert code == 0, server.logs()[-3000:]
    assert took < HEADER_TIMEOUT + SLACK, f"exit after {took:.2f} s"
    print(f"a silent connection held the drain {took:.2f} s (header timeout {HEADER_TIMEOUT} s)")
