"""The HTTP/1.1 protocol of the workers: uvicorn's httptools protocol with read deadlines and a
drain that leaves no request that reached the server unanswered.

Deadlines. A connection has `header_timeout` seconds from being accepted (on a kept-alive one,
from the first byte of its next request) to deliver a request line and headers, then
`body_timeout` seconds for the body. Both are totals, so trickling bytes does not extend them.
Late headers: the connection is closed. A late body: 408 with the JSON error body, unless a
response has started, then the connection is closed (after a short linger that discards input,
so that the client can read the 408 instead of a reset). One timer per connection serves every
phase: a phase change only moves the deadline, and the timer, never set further ahead than the
shorter timeout, looks again when it fires. A request therefore costs no timer calls of its own.

Drain. `shutdown` (the server calls it on SIGTERM) closes at once only a connection that is idle
between two requests with nothing waiting in its socket. Every other connection is answered and
then closed: a request in progress, headers or a body still arriving, or a new connection whose
request has not arrived yet (the header deadline bounds how long a silent client can hold it).
"""

from __future__ import annotations

import fcntl
import logging
import math
import struct
import termios
from asyncio import BaseTransport, Protocol, TimerHandle, Transport, get_running_loop
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ml_service.errors import RequestTimeout
from ml_service.http.responses import JSON_TYPE, error_response
from ml_service.observability.logging import log_event

log = logging.getLogger("ml_service.server")

# Phases of a connection: waiting for (or receiving) a request's headers, receiving its body,
# request received (being answered, or answered and idle).
_HEADERS, _BODY, _RECEIVED = range(3)
_NEVER = math.inf
# libuv timers have millisecond resolution: one may fire a fraction of a millisecond early.
_EARLY = 0.001
LINGER_SECONDS = 2.0


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a lossless `shutdown`."""

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    _step: ClassVar[float] = 10.0  # the shorter of the two

    @classmethod
    def with_timeouts(cls, header: float, body: float) -> type[TimedHttpProtocol]:
        """This protocol with other deadlines (uvicorn instantiates the class it is given)."""
        deadlines = {"header_timeout": header, "body_timeout": body, "_step": min(header, body)}
        return type(cls.__name__, (cls,), deadlines)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _HEADERS
        self._deadline = _NEVER
        self._timer: TimerHandle | None = None
        self._closing = False
        self._connected = False

    # Deadlines

    def _wait(self, seconds: float) -> None:
        """The current phase must end within `seconds`.

        A pending timer is never later than `_step` from when it was set, and every deadline is
        at least `_step` ahead, so a pending timer never fires too late and is left as it is.
        """
        now = self.loop.time()
        self._deadline = now + seconds
        if self._timer is None:
            self._timer = self.loop.call_at(now + min(seconds, self._step), self._check)

    def _check(self) -> None:
        self._timer = None
        if self._deadline == _NEVER or self.transport.is_closing():
            return
        now = self.loop.time()
        if now + _EARLY < self._deadline:
            self._timer = self.loop.call_at(min(self._deadline, now + self._step), self._check)
            return
        if self._phase == _BODY and self.flow.read_paused:
            # The server, not the client, is behind: the body waits for the application to
            # take what has arrived. The client gets a whole body timeout from now on.
            self._deadline = _NEVER
            self._wait(self.body_timeout)
            return
        self._deadline = _NEVER
        if self._phase == _BODY:
            self._body_late()
            return
        self.transport.close()
        log_event(
            log,
            "timeout",
            f"request headers not received within {self.header_timeout:g} s; connection closed",
            {"phase": "headers"},
        )

    def _body_late(self) -> None:
        cycle = self.cycle
        if cycle.response_started:
            self.transport.close()
            return
        status, headers, body = error_response(
            RequestTimeout(f"the request body did not arrive within {self.body_timeout:g} s")
        )
        # The application's next receive() reports a disconnect, and nothing it sends goes out.
        cycle.disconnected = True
        cycle.response_complete = True
        cycle.message_event.set()
        content = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: ",
            JSON_TYPE,
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        self._linger()
        log_event(
            log,
            "timeout",
            f"{cycle.scope['method']} {cycle.scope['path']} {status}",
            {"phase": "body", "status": status, "path": cycle.scope["path"]},
        )

    def _linger(self) -> None:
        """Close after a final answer sent before the request has fully arrived.

        Half-close, and read on (discarding) for a moment: closing with input still arriving
        would reset the connection, which can destroy the answer before the client reads it.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.connections.discard(self)
        self.transport.set_protocol(_Linger(self.transport))

    def close_after_request(self) -> None:
        """How a closing connection's request cycle closes it (see `_ClosingTransport`)."""
        if self._phase == _RECEIVED:
            self.transport.close()
        else:
            self._linger()

    # Connection and parser callbacks

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._connected = True
        self._wait(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != _HEADERS:  # the next request on a kept-alive connection
            self._phase = _HEADERS
            self._wait(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = _BODY
        self._wait(self.body_timeout)
        if self._closing:
            self.cycle.keep_alive = False
        if not self.cycle.keep_alive:
            self.cycle.transport = _ClosingTransport(self)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _RECEIVED
        self._deadline = _NEVER

    # Drain

    def shutdown(self) -> None:
        """Answer what has arrived or is arriving, then close; close an idle connection now."""
        self._closing = True
        if not self._connected:  # accepted during the drain: connection_made is still to come
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            cycle.transport = _ClosingTransport(self)
            return
        idle = self._phase == _RECEIVED and not self.pipeline
        if idle and not _unread_bytes(self.transport):
            self.transport.close()


class _ClosingTransport(Transport):
    """The transport as the request cycle of a connection that closes after it sees it: an
    early answer (413, 503...) to a request still arriving closes by lingering."""

    def __init__(self, protocol: TimedHttpProtocol) -> None:
        super().__init__()
        self._protocol = protocol
        self._transport = protocol.transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._protocol.close_after_request()


class _Linger(Protocol):
    """What a connection becomes after a 408: input is discarded, then the connection closed."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.timer = get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.timer.cancel()


def _unread_bytes(transport: Transport) -> int:
    """Bytes the client has sent that the event loop has not read yet (0 when unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    count: int = struct.unpack("i", raw)[0]
    return count
