"""Progress on stderr: plain lines when it is not a terminal, a bar when it is."""

from __future__ import annotations

import io

from ml_service.batch.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_interval_with_rate_share_and_time_left() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(1000, "bytes", stream, every=5.0, clock=lambda: now[0])
    now[0] = 2.0
    progress.update(100, 100)
    assert stream.getvalue() == ""
    now[0] = 10.0
    progress.update(500, 250)
    assert stream.getvalue() == (
        "ml-service score: 500 rows, 50 rows/s, 25% of the input read, about 30 s left\n"
    )
    progress.close()


def test_quiet_writes_nothing() -> None:
    stream = Terminal()
    progress = Progress(10, "rows", stream, quiet=True, every=0)
    progress.update(10, 10)
    progress.close()
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_bar_in_rows_estimated_from_bytes() -> None:
    stream = Terminal()
    progress = Progress(1000, "bytes", stream)
    progress.update(50, 100)
    assert progress._bar.total == 500
    progress.update(400, 800)
    progress.close()
    text = stream.getvalue()
    assert "ml-service score" in text
    assert "400/400" in text
    assert "rows/s" in text
