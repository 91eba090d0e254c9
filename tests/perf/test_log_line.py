"""The direct log line is the line `logging` with `JsonFormatter` writes, byte for byte."""

from __future__ import annotations

import io
import logging
import os
import uuid
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from ml_service.http.pipeline import _new_request_id
from ml_service.observability import logging as service_logging
from ml_service.observability.logging import (
    JsonFormatter,
    JsonHandler,
    configure_logging,
    log_event,
)


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("info")
    handler = root.handlers[0]
    assert isinstance(handler, JsonHandler)
    handler.close()  # closes its own stdout descriptor
    buffer = io.StringIO()
    handler.setStream(buffer)
    monkeypatch.setattr(service_logging.time, "time", lambda: 1_700_000_000.25)
    yield buffer
    root.handlers[:], root.level = saved


FIELDS = {
    "request_id": "abc",
    "rows": 2,
    "inputs": np.array([[0.0, 6.575], [1.0, 7.1]]),
    "outputs": np.array([24.1, 30.2]),
    "level": "fields may shadow entries",
}


def test_same_line_as_the_logging_path(stream: io.StringIO) -> None:
    logger = logging.getLogger("ml_service.predict")
    log_event(logger, "prediction", "prediction", FIELDS)
    direct = stream.getvalue()
    stream.truncate(0)
    stream.seek(0)
    logger.info("prediction", extra={"event": "prediction", "fields": FIELDS})
    assert direct == stream.getvalue()
    assert direct.startswith('{"time":"2023-11-14T22:13:20.250Z",')


def test_other_handlers_get_the_record(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    # With a second handler (here pytest's), records go through logging and reach both.
    with caplog.at_level(logging.INFO, logger="ml_service.http"):
        log_event(logging.getLogger("ml_service.http"), "request", "GET / 200", {"status": 200})
    assert [r.getMessage() for r in caplog.records] == ["GET / 200"]
    assert '"status":200' in stream.getvalue()


def test_nothing_below_the_level(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    log_event(logging.getLogger("ml_service.http"), "request", "GET / 200")
    assert stream.getvalue() == ""


def test_formatter_time_is_unchanged() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.created, record.msecs = 1_700_000_000.999, 999.0
    assert JsonFormatter().format(record).startswith('{"time":"2023-11-14T22:13:20.999Z"')


def test_forked_workers_draw_different_request_ids() -> None:
    """Workers are forked from one master: each must continue with its own random state."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking with threads running; the child only writes and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: send one id and leave at once
        os.write(write, _new_request_id().encode())
        os._exit(0)
    os.close(write)
    ours = _new_request_id()
    with os.fdopen(read, "rb") as pipe:
        theirs = pipe.read().decode()
    os.waitpid(pid, 0)
    assert len(theirs) == 32
    assert theirs != ours


def test_request_ids_are_uuid4_hex() -> None:
    ids = {_new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4
        assert parsed.hex == value
