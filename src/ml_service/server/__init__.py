"""The production server: a gunicorn master supervising uvicorn worker processes.

The master restarts any worker that dies, except one that could not start (its model did not
load): then the whole server stops, non-zero, for the platform to restart or flag. SIGTERM (or
SIGINT) makes every worker answer every request that has reached it, refuse new connections, and
exit within the graceful timeout; `ml_service.server.worker` says how. All options come from
`ml_service.server.gunicorn_config`, which App Service's startup command uses too.
"""

from __future__ import annotations

import os
import sys

from ml_service.errors import ServerFailed

APP = "ml_service.http.app:app"
CONFIG = "python:ml_service.server.gunicorn_config"


def command(bind: str | None = None) -> list[str]:
    """The gunicorn command line; the same one App Service's startup command runs."""
    return ["gunicorn", "--config", CONFIG, *([f"--bind={bind}"] if bind else []), APP]


def serve(bind: str | None = None) -> None:
    """Run the server in the foreground until SIGTERM or SIGINT.

    gunicorn stops the whole server (status 3) when a worker cannot start, e.g. because its
    model did not load; that becomes `ServerFailed` (`ml-service serve` then exits 1).
    """
    from gunicorn.app.wsgiapp import run

    sys.argv = command(bind)
    master = os.getpid()
    try:
        run()
    except SystemExit as exc:
        # A worker leaves through here too (it is a fork of this call): its status is for the
        # master to read, unchanged.
        if exc.code in (0, None) or os.getpid() != master:
            raise
        # 3 is gunicorn's worker boot error; anything else stopped the master before any
        # worker ran (a registry model that could not be pulled).
        why = "a worker could not start" if exc.code == 3 else "it could not start"
        raise ServerFailed(
            f"the server stopped: {why} (gunicorn exit status {exc.code}); the log above says why"
        ) from None
