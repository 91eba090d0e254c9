"""Progress of a scoring run on stderr: a bar on a terminal, plain lines otherwise.

The total is in rows when the file says how many it holds (Parquet), else in bytes (CSV), from
which the rows to come are estimated by the bytes per row read so far.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ml_service.batch.command import PREFIX


class Progress:
    """Rows done, rows per second and time left, every `every` seconds (a bar on a tty)."""

    def __init__(
        self,
        total: int,
        unit: str,
        stream: TextIO | None = None,
        quiet: bool = False,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.every = every
        self.clock = clock
        self.started = clock()
        self._last = self.started
        self.rows = 0
        self._bar: Any = None
        if not quiet and _is_tty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(
                total=self._rows_total(0, 0),
                unit=" rows",
                unit_scale=True,
                file=self.stream,
                desc=PREFIX,
                dynamic_ncols=True,
            )

    def _rows_total(self, rows: int, done: int) -> int | None:
        """The file's rows: known (Parquet), else estimated from the bytes read so far."""
        if self.unit == "rows":
            return self.total
        if rows == 0 or done == 0:
            return None
        return max(rows, round(self.total * rows / done))

    def update(self, rows: int, done: int) -> None:
        """`rows` rows scored so far; `done` of `total` read (in `unit`)."""
        added = rows - self.rows
        self.rows = rows
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.total = self._rows_total(rows, done)
            self._bar.update(added)
            return
        now = self.clock()
        if now - self._last < self.every:
            return
        self._last = now
        self.stream.write(f"{PREFIX}: {self.describe(rows, done, now)}\n")
        self.stream.flush()

    def describe(self, rows: int, done: int, now: float) -> str:
        """A plain line: rows so far, share done, rows per second, time left."""
        seconds = max(now - self.started, 1e-9)
        rate = rows / seconds
        line = f"{rows} rows, {rate:,.0f} rows/s"
        if self.total and done:
            share = min(done / self.total, 1.0)
            left = seconds * (1 - share) / share if share else 0.0
            line += f", {share:.0%} of the input read, about {left:.0f} s left"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.total = self.rows
            self._bar.refresh()
            self._bar.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
