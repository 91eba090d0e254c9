"""HTTP/1.1 over a plain socket, sent in whatever pieces a test needs (a header cut short, a body
one byte short of complete), so tests can hold a request at any point on its way in."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any

JSON = "application/json"


def request(method: str, path: str, body: bytes = b"", content_type: str = JSON) -> bytes:
    """The bytes of one request, keeping the connection alive."""
    head = f"{method} {path} HTTP/1.1\r\nhost: test\r\n"
    if body or method == "POST":
        head += f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


@dataclass(frozen=True)
class Answer:
    """A response (`status` as a string), or the error's class name as `status`."""

    status: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def json(self) -> Any:
        return json.loads(self.body)


class Exchange:
    """One client connection to a local port."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port: int = self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> Answer:
        """Read one response (or what went wrong instead)."""
        response = http.client.HTTPResponse(self.sock)
        try:
            response.begin()
            return Answer(str(response.status), response.read(), tuple(response.getheaders()))
        except (OSError, http.client.HTTPException) as exc:
            return Answer(type(exc).__name__)

    def exchange(self, data: bytes) -> Answer:
        """Send `data` (blocking while the server does not read), then read the response."""
        try:
            self.send(data)
        except OSError as exc:
            return Answer(type(exc).__name__)
        return self.answer()

    def closed_by_server(self) -> bool:
        """True once the server has closed the connection (without waiting for it)."""
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
