"""JSON-lines logging to stdout, the format App Service and Kubernetes log streams collect.

`log_event` runs twice per prediction request, so when the logger's records would reach only
the JSON handler on the root logger (the served configuration), it writes the very line
`JsonFormatter` would, without building a `LogRecord`; with any other handler or filter in the
way (tests capturing logs, a custom configuration) it goes through `logging` as usual.

Lines are not flushed one by one: a write per line costs more than the prediction itself under
load, and a slow log sink would stall the event loop. `JsonHandler` writes into a 64 KiB buffer
on its own descriptor for stdout (whatever `PYTHONUNBUFFERED` says) that a background thread
flushes every `FLUSH_INTERVAL` seconds, and that is flushed before a fork and at exit. A process
killed with SIGKILL may lose its last fraction of a second of lines.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from typing import Any

import orjson

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
FLUSH_INTERVAL = 0.2
_NO_LOCK = contextlib.nullcontext()
BUFFER_BYTES = 1 << 16


class _Clock:
    """UTC timestamps as logged, the formatted second cached (one strftime per second)."""

    second = -1
    prefix = ""

    @classmethod
    def stamp(cls, created: float, msecs: float) -> str:
        second = int(created)
        if second != cls.second:
            cls.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cls.second = second
        return f"{cls.prefix}.{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _Clock.stamp(record.created, record.msecs),
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
        return orjson.dumps(entry, option=_OPTIONS).decode()


class JsonHandler(logging.StreamHandler[Any]):
    """JSON lines to stdout through a buffer flushed by time, not by line."""

    def __init__(self) -> None:
        stream = _buffered_stdout()
        super().__init__(stream)
        self._own = stream is not sys.stdout
        self.setFormatter(JsonFormatter())

    def close(self) -> None:
        """Flush, and close the descriptor this handler opened (never stdout itself)."""
        with self.lock or _NO_LOCK:
            stream = self.setStream(sys.stdout)
            if stream is not None and self._own:
                with contextlib.suppress(Exception):
                    stream.close()
            self._own = False
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            with self.lock or _NO_LOCK:
                self.stream.write(line)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def _buffered_stdout() -> Any:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdout  # captured (tests): write where stdout goes
    return os.fdopen(os.dup(fd), "w", buffering=BUFFER_BYTES, encoding="utf-8")


class _Flusher:
    """One daemon thread per process flushing the current JSON handler every interval."""

    handler: JsonHandler | None = None
    thread: threading.Thread | None = None
    pid = 0

    @classmethod
    def use(cls, handler: JsonHandler) -> None:
        flush_logs()
        cls.handler = handler
        if cls.thread is None or cls.pid != os.getpid():
            cls.pid = os.getpid()
            cls.thread = threading.Thread(target=cls._run, name="log-flusher", daemon=True)
            cls.thread.start()

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            flush_logs()


def flush_logs() -> None:
    """Write out buffered log lines (before a fork, at shutdown, and by the flusher thread)."""
    handler = _Flusher.handler
    if handler is not None:
        with contextlib.suppress(Exception):
            handler.flush()


atexit.register(flush_logs)


def configure_logging(level: str) -> None:
    """Route every logger (ours, uvicorn's, gunicorn's) through one JSON handler on stdout."""
    handler = JsonHandler()
    _Flusher.use(handler)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, JsonHandler):
            old.close()
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
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_json_handler(logger)
    if handler is None:
        logger.info(message, extra={"event": event, "fields": fields})
        return
    created = time.time()
    entry: dict[str, Any] = {
        "time": _Clock.stamp(created, (created - int(created)) * 1000),
        "level": "info",
        "logger": logger.name,
        "message": message,
        "event": event,
    }
    if fields:
        entry.update(fields)
    try:
        line = orjson.dumps(entry, option=_OPTIONS).decode() + handler.terminator
        with handler.lock or _NO_LOCK:
            handler.stream.write(line)
    except Exception:
        logger.info(message, extra={"event": event, "fields": fields})


def _sole_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler that would emit `logger`'s info records, if it is a plain stream handler
    with `JsonFormatter`, no filters and no level above info; otherwise None."""
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        handlers = current.handlers
        if handlers:
            if len(handlers) != 1 or (current.parent is not None and current.propagate):
                return None
            handler = handlers[0]
            if (
                type(handler) is JsonHandler
                and type(handler.formatter) is JsonFormatter
                and not handler.filters
                and handler.level <= logging.INFO
            ):
                return handler
            return None
        if not current.propagate:
            return None
        current = current.parent
    return None
