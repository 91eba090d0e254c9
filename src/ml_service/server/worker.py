"""The uvicorn worker class gunicorn runs: uvloop and httptools, no access log of its own.

On SIGTERM (or SIGINT) the worker marks the application draining before anything else, so
/health/ready answers 503 from that moment on while the in-flight requests finish. Once they
have, the worker leaves through gunicorn's exit path (its `worker_exit` hook, `atexit`), so the
last log lines are written and the master sees a clean exit.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker


class DrainingServer(Server):
    """A uvicorn server that turns the application's readiness off the moment it is told to stop.

    uvicorn notices the signal only at its next tick and marks nothing itself until every
    connection has closed; a scheduler probing readiness in between must already see 503.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = getattr(self.config.app, "state", None)
        if state is not None and hasattr(state, "draining"):
            state.draining = True
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's signal capture, minus raising the signal again after a graceful stop.

        Re-raised, SIGTERM meets the default disposition gunicorn's uvicorn worker installs and
        kills the process on the spot: no exit hook, no `atexit`, the last lines of the log lost.
        """
        with super().capture_signals():
            yield
            self._captured_signals.clear()


class Worker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
    }

    async def _serve(self) -> None:
        # UvicornWorker._serve with the draining server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        # The plain sockets, not gunicorn's wrappers: the event loop takes them over and closes
        # them, and a wrapper would close the same descriptor a second time.
        await server.serve(sockets=[listener.sock for listener in self.sockets])
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
