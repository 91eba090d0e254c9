"""Write-behind logging: nothing lost, nothing doubled, order kept, and bounded memory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ml_service.observability import logging as service_logging
from ml_service.observability.logging import WriteBehind


def test_lines_wait_for_flush_then_arrive_in_order(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("w") as target:
        stream = WriteBehind(target)
        for i in range(1000):
            stream.write(f"line {i}\n")
        assert path.read_text() == ""
        stream.flush()
        assert path.read_text().splitlines() == [f"line {i}" for i in range(1000)]
        stream.close()


def test_concurrent_writers_and_flushes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("w") as target:
        stream = WriteBehind(target)
        stop = threading.Event()

        def flusher() -> None:
            while not stop.is_set():
                stream.flush()

        def writer(name: str) -> None:
            for i in range(20_000):
                stream.write(f"{name} {i}\n")

        threads = [threading.Thread(target=writer, args=(n,)) for n in "ab"]
        flushing = threading.Thread(target=flusher)
        flushing.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        flushing.join()
        stream.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 40_000
    for name in "ab":
        assert [line for line in lines if line.startswith(name)] == [
            f"{name} {i}" for i in range(20_000)
        ]


def test_a_backlog_is_written_by_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_logging, "BACKLOG_BYTES", 100)
    path = tmp_path / "log"
    with path.open("w") as target:
        stream = WriteBehind(target)
        for _ in range(20):
            stream.write("0123456789\n")
        assert len(path.read_text()) > 100
        stream.close()


def test_close_releases_its_descriptor_only(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as target:
        stream = WriteBehind(target)
        stream.write("x\n")
        stream.close()
        assert not target.closed
        os.fstat(target.fileno())
    assert (tmp_path / "log").read_text() == "x\n"
