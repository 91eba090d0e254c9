"""The uvicorn worker class gunicorn runs: uvloop and httptools, no access log of its own.

On SIGTERM (or SIGINT) the worker marks the application draining before anything else, so
/health/ready answers 503 from that moment on while the in-flight requests finish.
"""

from __future__ import annotations

import sys
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
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
