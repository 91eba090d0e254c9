"""A real `ml-service serve` process on a free port, for tests that need the real thing.

Also what such tests look at from outside (Linux /proc): the master's workers, their state and
pending signals, and the server's side of each TCP connection (accepted or still in the listen
backlog, bytes not read yet).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Peer:
    """The server's side of one TCP connection, as the kernel reports it."""

    accepted: bool  # False: complete, but still waiting in the listen backlog
    unread: int  # bytes received that the server process has not read yet


def peers(port: int) -> dict[int, Peer]:
    """Established connections to local `port`, by the client's port (from /proc/net/tcp)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, queues, inode = (
                fields[1],
                fields[2],
                fields[3],
                fields[4],
                fields[9],
            )
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                unread = int(queues.split(":")[1], 16)
                found[int(remote.rsplit(":", 1)[1], 16)] = Peer(inode != "0", unread)
    return found


def worker_pids(master: int) -> set[int]:
    """Process ids of the master's children (its workers)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            pids.add(int(entry.name))
    return pids


def tree_pss_mib(master: int) -> float:
    """Proportional set size of `master` and its workers together, in MiB: each page counted
    once across them (a shared page split among the processes that map it)."""
    kib = 0
    for pid in {master, *worker_pids(master)}:
        try:
            for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


def process_state(pid: int) -> str:
    """The one-letter state of a process (`T` stopped, `Z` zombie...); `X` once it is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def pending_signals(pid: int) -> set[signal.Signals]:
    """Signals sent to process `pid` that it has not handled yet (it may be stopped)."""
    mask = 0
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith(("SigPnd:", "ShdPnd:")):
                mask |= int(line.split()[1], 16)
    except OSError:
        return set()
    return {sig for sig in signal.Signals if mask >> (sig - 1) & 1}


def poll(condition: Callable[[], object], what: str, deadline: float = 30.0) -> None:
    """Wait (bounded) until `condition()` is true; fail saying `what` never happened."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never: {what}")
        time.sleep(0.005)


@dataclass
class Server:
    """A running server: its URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, path: str, status: int = 200, deadline: float = 30.0) -> httpx.Response:
        """Poll `path` until it answers `status` (fails with the server's log otherwise)."""
        end = time.monotonic() + deadline
        last: object = None
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.logs()}"
                )
            try:
                response = httpx.get(self.url + path, timeout=2)
                if response.status_code == status:
                    return response
                last = response.status_code
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered {status} (last: {last}):\n{self.logs()}")

    def wait_for_log(self, text: str, count: int = 1, deadline: float = 30.0) -> None:
        """Poll the log until `count` lines contain `text` (each process writes every 0.2 s)."""
        end = time.monotonic() + deadline
        while sum(text in line for line in self.logs().splitlines()) < count:
            if time.monotonic() > end:
                raise AssertionError(f"never {count} log lines with {text!r}:\n{self.logs()}")
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextmanager
def running_server(
    model_dir: Path | None,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    ready: bool = True,
    command: list[str] | None = None,
) -> Iterator[Server]:
    """Start `ml-service serve` (or `command`) for `model_dir` (None: what `env` names), wait
    for readiness, stop it afterwards."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    full_env = {
        **os.environ,
        "PORT": str(port),
        "ML_SERVICE_HOST": "127.0.0.1",
        "ML_SERVICE_WORKERS": "1",
        "ML_SERVICE_METRICS_DIR": str(tmp_path / f"metrics-{port}"),
        **(env or {}),
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if "ML_SERVICE_MODEL_DIR" not in (env or {}):
        full_env.pop("ML_SERVICE_MODEL_DIR", None)
        if model_dir is not None:
            full_env["ML_SERVICE_MODEL_DIR"] = str(model_dir)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command or [str(BIN / "ml-service"), "serve"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        server.wait_for("/health/live")
        if ready:
            server.wait_for("/health/ready")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
