"""A deliberately broken HTTP server, to prove the load-test gate fails on it.

`python loadtest/fake_server.py stall PORT SECONDS` accepts connections and never answers;
`... error PORT SECONDS` answers every request with 500. Both listen on 127.0.0.1 only and exit
after SECONDS. `make loadtest-selftest` runs the profiles against each and expects failure.
"""

from __future__ import annotations

import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ErrorHandler(BaseHTTPRequestHandler):
    """Answers 500 to everything."""

    def _fail(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b'{"error": "deliberately broken"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _fail  # noqa: N815 - http.server's naming
    do_POST = _fail  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def stall(port: int, seconds: float) -> None:
    """Accept connections, read nothing, answer nothing."""
    held = []
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(0.5)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            held.append(connection)
    for connection in held:
        connection.close()


def error(port: int, seconds: float) -> None:
    """Answer 500 to every request."""
    with ThreadingHTTPServer(("127.0.0.1", port), ErrorHandler) as server:
        server.timeout = 0.5
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            server.handle_request()


if __name__ == "__main__":
    mode, port_text, seconds_text = sys.argv[1:4]
    {"stall": stall, "error": error}[mode](int(port_text), float(seconds_text))
