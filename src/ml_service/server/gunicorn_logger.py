"""gunicorn's own log lines (master start-up, worker boots and exits) as JSON lines too."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from ml_service.observability.logging import configure_logging


class JsonLogger(Logger):  # type: ignore[misc]
    """Send gunicorn's error log through the service's JSON handler; no access log."""

    def setup(self, cfg: Any) -> None:
        configure_logging(cfg.loglevel.lower())
        self.error_log.handlers[:] = []
        self.error_log.propagate = True
        self.error_log.setLevel(logging.getLogger().level)
        self.access_log.disabled = True
