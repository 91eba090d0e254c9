"""Stand-ins for the service's application, for tests of the server process around it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BARRIER_ENV = "TEST_LOAD_FAILS_BARRIER"


class LoadFails:
    """An ASGI app whose start-up ends with `state.load_failed` set, as the service's app does
    when its one artifact cannot load. It answers nothing: the server must not serve it.

    With `TEST_LOAD_FAILS_BARRIER` naming a directory, every worker waits there until all of
    `ML_SERVICE_WORKERS` have started, so that they fail together, and then blocks SIGTERM, so
    that each one exits with its own status even when the master's halt signals it first.
    """

    def __init__(self) -> None:
        self.state = SimpleNamespace(draining=False, load_failed=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan", "a server whose app failed to load served a request"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._all_workers_here()
                self.state.load_failed = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _all_workers_here(self) -> None:
        barrier = os.environ.get(BARRIER_ENV)
        if barrier is None:
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        here = Path(barrier)
        (here / str(os.getpid())).touch()
        end = time.monotonic() + 30
        while len(list(here.iterdir())) < int(os.environ["ML_SERVICE_WORKERS"]):
            if time.monotonic() > end:
                return
            await asyncio.sleep(0.01)


load_fails = LoadFails()
