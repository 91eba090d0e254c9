"""JSON-lines logging to stdout, the format App Service and Kubernetes log streams collect.

`log_event` runs for every request, so when the logger's records would reach only
the JSON handler on the root logger (the served configuration), it writes the very line
`JsonFormatter` would, without building a `LogRecord`; with any other handler or filter in the
way (tests capturing logs, a custom configuration) it goes through `logging` as usual.

Lines are written behind, not one by one: a write per line costs more than the prediction
itself under load, and a slow log sink (a busy disk behind the pipe) must not stall the event
loop. `JsonHandler` queues lines in memory; a background thread writes them to its own
descriptor for stdout every `FLUSH_INTERVAL` seconds, and they are written out before a fork and
at exit. Only when more than `BACKLOG_BYTES` are waiting does a caller write them itself, so a
sink that cannot keep up slows the service rather than growing its memory. A process killed with
SIGKILL may lose its last fraction of a second of lines.
"""

from __future__ import annotations

import atexit
import collections
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
_LINE_OPTIONS = _OPTIONS | orjson.OPT_APPEND_NEWLINE
FLUSH_INTERVAL = 0.2
BACKLOG_BYTES = 4 << 20


class _Clock:
    """UTC timestamps as logged: the formatted second cached, and the last stamp reused within
    its millisecond."""

    second = -1
    prefix = ""
    milli = -1
    last = ""

    @classmethod
    def stamp(cls, created: float, msecs: float) -> str:
        second = int(created)
        if second != cls.second:
            cls.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            cls.second = second
        return f"{cls.prefix}.{int(msecs):03d}Z"

    @classmethod
    def now(cls) -> str:
        """The stamp of the current time (what a `LogRecord` made now would carry)."""
        created = time.time()
        milli = int(created * 1000)
        if milli != cls.milli:
            cls.milli = milli
            cls.last = cls.stamp(created, (created - int(created)) * 1000)
        return cls.last


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
    """JSON lines to stdout, written behind by the flusher thread."""

    def __init__(self) -> None:
        super().__init__(WriteBehind(sys.stdout))
        self.setFormatter(JsonFormatter())

    def close(self) -> None:
        """Write out what is queued and close this handler's descriptor (never stdout itself)."""
        stream = self.setStream(sys.stdout)
        if isinstance(stream, WriteBehind):
            stream.close()
        super().close()

    def flush(self) -> None:
        # Without the handler's lock: records keep being queued while a write is under way.
        self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


class WriteBehind:
    """A text stream whose `write` only queues; `flush` does the writing, one call for all.

    Thread-safe: `write` appends to a deque (atomic), `flush` holds its own lock. It writes to a
    duplicate of the target's descriptor when it has one (so `PYTHONUNBUFFERED` and the target's
    own buffer play no part), else to the target stream (captured output in tests).
    """

    def __init__(self, target: Any) -> None:
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._target = target
        try:
            self._fd: int | None = os.dup(target.fileno())
        except (AttributeError, OSError, ValueError):
            self._fd = None

    def write(self, text: str) -> int:
        self.write_line(text.encode("utf-8", "backslashreplace"))
        return len(text)

    def write_line(self, data: bytes) -> None:
        """Queue already encoded text (the direct log line's path)."""
        self._queue.append(data)
        self._queued += len(data)
        if self._queued > BACKLOG_BYTES:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            queue = self._queue
            parts = [queue.popleft() for _ in range(len(queue))]
            self._queued = 0
            if not parts:
                return
            data = b"".join(parts)
            if self._fd is None:
                self._target.write(data.decode("utf-8", "backslashreplace"))
                self._target.flush()
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._target = sys.stdout


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


def log_event(
    logger: logging.Logger, event: str, message: str, fields: dict[str, Any] | None = None
) -> None:
    """Log at info with structured `fields`, skipping all work when info is off."""
    fields = fields or {}
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_json_handler(logger)
    if handler is None:
        logger.info(message, extra={"event": event, "fields": fields})
        return
    entry = {
        "time": _Clock.now(),
        "level": "info",
        "logger": logger.name,
        "message": message,
        "event": event,
    }
    entry.update(fields)
    try:
        line = orjson.dumps(entry, option=_LINE_OPTIONS)
    except Exception:
        logger.info(message, extra={"event": event, "fields": fields})
        return
    stream = handler.stream
    if type(stream) is WriteBehind:
        stream.write_line(line)
    else:
        stream.write(line.decode())


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
