"""JSON-lines logging to stdout, the format App Service and Kubernetes log streams collect."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event is not None:
            entry["event"] = event
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def configure_logging(level: str) -> None:
    """Route every logger (ours, uvicorn's, gunicorn's) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name in ("uvicorn", "uvicorn.error", "gunicorn", "gunicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Requests are logged once, by the application, with their request id.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("gunicorn.access").disabled = True


def log_event(logger: logging.Logger, event: str, message: str, **fields: Any) -> None:
    """Log at info with structured fields, skipping all work when info is off."""
    if logger.isEnabledFor(logging.INFO):
        logger.info(message, extra={"event": event, "fields": fields})
