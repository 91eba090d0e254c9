"""The uvicorn worker class gunicorn runs: uvloop, `TimedHttpProtocol`, no access log of its own.

Stopping. SIGTERM and SIGINT drain; SIGQUIT stops at once (the master sends it on a second
SIGINT or SIGQUIT, and only then). Either way the worker marks the application draining before
anything else, so /health/ready answers 503 from that moment on. The drain (`DrainingServer`):

1. accepts every connection already waiting in the listen backlog, then closes the listener, so
   a connection the kernel completed before the close is served rather than reset and a later
   one is refused;
2. shuts every connection down the lossless way (`TimedHttpProtocol.shutdown`): requests in
   progress, or still arriving, are answered, then their connections close;
3. waits for them, up to a second less than the graceful timeout (then the master would kill
   the worker), and leaves through gunicorn's exit path, so the last log lines are written and
   the master sees a clean exit.

Starting. A worker whose model could not load (`state.load_failed`) fails its start-up: it exits
with gunicorn's worker boot error, and the master stops the whole server instead of restarting
workers that fail the same way, so the platform sees the failure and restarts or flags it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from types import FrameType
from typing import Any, ClassVar, cast

from gunicorn.arbiter import Arbiter
from uvicorn.lifespan.on import LifespanOn
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from ml_service.config import get_settings
from ml_service.errors import ServiceError
from ml_service.server.protocol import TimedHttpProtocol

log = logging.getLogger("ml_service.server")


class ModelLifespan(LifespanOn):
    """The application's start-up fails when its model could not load."""

    async def startup(self) -> None:
        await super().startup()
        state = getattr(self.config.app, "state", None)
        if self.should_exit or not getattr(state, "load_failed", False):
            return
        log.critical(
            "the model could not load (%s): stopping the server so that it is restarted or flagged",
            _why_not_ready(state),
            extra={"event": "model_load_fatal"},
        )
        await self.shutdown()
        self.should_exit = True


def _why_not_ready(state: Any) -> str:
    """What the application's readiness check says (its 503 message)."""
    try:
        state.require_ready()
    except ServiceError as exc:
        return exc.message
    except AttributeError:
        pass
    return "no reason given"


class DrainingServer(Server):
    """A uvicorn server whose stop loses no request that has reached it (see the module)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # noqa: ARG002
        """SIGTERM, SIGINT: drain. A repeated signal changes nothing (SIGQUIT stops at once).

        Not uvicorn's handler: it escalates a second SIGINT to an immediate stop, and a group
        signal reaches a worker twice (from the terminal or systemd, and from the master).
        """
        self._mark_draining()
        self.should_exit = True

    def handle_quit(self) -> None:
        """SIGQUIT: stop without waiting for requests in progress."""
        self._mark_draining()
        self.should_exit = True
        self.force_exit = True

    def _mark_draining(self) -> None:
        # Readiness off at once: uvicorn notices the signal only at its next tick.
        state = getattr(self.config.app, "state", None)
        if state is not None and hasattr(state, "draining"):
            state.draining = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Accept what is waiting, then (with no await in between) let uvicorn close listeners.
        for listener in sockets or ():
            self._adopt_backlog(listener)
        await super().shutdown(sockets=sockets)

    def _adopt_backlog(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: what is left is lost
                log.error("could not accept waiting connections while draining: %s", exc)
                return
            connection.setblocking(False)
            task = loop.create_task(self._serve_adopted(connection))
            task.add_done_callback(self.server_state.tasks.discard)
            self.server_state.tasks.add(task)

    async def _serve_adopted(self, connection: socket.socket) -> None:
        def protocol() -> TimedHttpProtocol:
            made = cast(
                TimedHttpProtocol,
                self.config.http_protocol_class(  # type: ignore[call-arg]
                    config=self.config,
                    server_state=self.server_state,
                    app_state=self.lifespan.state,
                ),
            )
            made.shutdown()  # answered once, then closed
            return made

        try:
            await asyncio.get_running_loop().connect_accepted_socket(protocol, connection)
        except OSError:
            connection.close()


class Worker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": TimedHttpProtocol,
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.config.http = TimedHttpProtocol.with_timeouts(
            settings.header_timeout, settings.body_timeout
        )
        # Done before the master's SIGKILL at the graceful timeout, so the worker exits cleanly.
        self.config.timeout_graceful_shutdown = max(1, int(settings.graceful_timeout) - 1)

    async def _serve(self) -> None:
        # UvicornWorker._serve with the draining server, its SIGQUIT and the model check.
        self.config.app = self.wsgi
        self.config.load()
        self.config.lifespan_class = ModelLifespan
        server = DrainingServer(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, server.handle_quit)
        # The plain sockets, not gunicorn's wrappers: the event loop takes them over and closes
        # them, and a wrapper would close the same descriptor a second time.
        await server.serve(sockets=[listener.sock for listener in self.sockets])
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
