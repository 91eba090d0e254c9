"""The production server: a gunicorn master supervising uvicorn worker processes.

The master restarts any worker that dies; SIGTERM makes every worker stop accepting, finish its
in-flight requests within the graceful timeout, and exit. All options come from
`ml_service.server.gunicorn_config`, which App Service's startup command uses too.
"""

from __future__ import annotations

import sys

APP = "ml_service.http.app:app"
CONFIG = "python:ml_service.server.gunicorn_config"


def command(bind: str | None = None) -> list[str]:
    """The gunicorn command line; the same one App Service's startup command runs."""
    return ["gunicorn", "--config", CONFIG, *([f"--bind={bind}"] if bind else []), APP]


def serve(bind: str | None = None) -> None:
    """Run the server in the foreground until SIGTERM or SIGINT."""
    from gunicorn.app.wsgiapp import run

    sys.argv = command(bind)
    run()
