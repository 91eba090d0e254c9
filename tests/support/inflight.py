"""Requests held in flight in a real server: large batches whose last byte waits for a signal.

Shared by the shutdown tests of the server process and of the container image: a batch is sent
whole but for its last byte, so the server has started it and cannot have answered it, and
`unread_bytes` tells from the kernel's socket tables when the server has read all it was sent;
`ready_status` probes readiness on a new connection while the server drains.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx


def batch_body(rows: int) -> bytes:
    """A KServe V1 request of `rows` valid, varied rows (about 40 bytes a row)."""
    instances = [
        [i % 2, 4.0 + (i % 50) / 10, 200.0 + i % 500, 13.0 + (i % 80) / 10, 390.0, 2.0 + i % 30]
        for i in range(rows)
    ]
    return json.dumps({"instances": instances}).encode()


def post_batch(
    client: httpx.Client, url: str, body: bytes, sent: threading.Event, release: threading.Event
) -> str:
    """POST one batch; the status code, or the error's class name.

    The body goes out whole but for its last byte; then `sent` is set, and the last byte
    follows once `release` is set. Until then the request is in flight in the server, which
    has started it (read its headers and most of its body) but cannot have answered it.
    """

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body) - 1, 65536):
            yield body[start : min(start + 65536, len(body) - 1)]
        sent.set()
        release.wait(timeout=30)
        yield body[-1:]

    try:
        response = client.post(
            f"{url}/v1/models/housing:predict",
            content=chunks(),
            headers={"content-type": "application/json", "content-length": str(len(body))},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__
    if response.status_code == 200:
        rows = len(json.loads(body)["instances"])
        assert len(response.json()["predictions"]) == rows
    return str(response.status_code)


def ready_status(url: str) -> str:
    """/health/ready on a new connection: the status code, or the error's class name."""
    try:
        return str(httpx.get(f"{url}/health/ready", timeout=2).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def unread_bytes(port: int, net: Path = Path("/proc/net")) -> list[int]:
    """For each connection a server process has accept()ed on `port`: bytes it has not read.

    From the tcp tables under `net` (Linux; `/proc/PID/net` for another network namespace). A
    connection still waiting in the listen backlog has no socket inode yet and is left out; an
    accepted one whose receive queue is empty has been read by the server up to the last byte
    the client sent.
    """
    queues = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (net / table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] != "0":
                queues.append(int(fields[4].split(":")[1], 16))
    return queues
