"""Live reload: every worker of a server on the same `Plan`, changed without a restart.

A change (load, unload, or a repository poll that finds new versions) is made by the worker
that receives it: under an exclusive lock on the shared directory it reads the current plan,
scans the disk, verifies and loads what is new, writes the next plan (`plan.json`, replaced
atomically) and installs it. Every other worker notices the new plan within a tick
(`FLUSH_SECONDS`), loads and warms the same versions off the event loop, installs them and
writes its acknowledgement (`acks/<pid>.json`). A load or unload returns once every live
worker has acknowledged; a worker that starts later reads the plan before it serves.

With no shared directory (one process, e.g. in-process tests) the plan lives in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import anyio.to_thread

from ml_service.config import METRICS_DIR_ENV
from ml_service.errors import NotReady
from ml_service.repository.registry import LoadedModel, Plan, Registry

log = logging.getLogger("ml_service.repository")

PLAN_FILE = "plan.json"
ACKS = "acks"
# How long a load or unload waits for every worker to confirm.
CONFIRM_SECONDS = 60.0
_POLL = 0.02
Loaded = dict[tuple[str, str], LoadedModel]


def shared_dir() -> Path | None:
    """Where the workers of one server share the plan (beside their metrics), if anywhere."""
    directory = os.environ.get(METRICS_DIR_ENV)
    return Path(directory) / "repository" if directory else None


class Coordinator:
    """Keeps this worker's registry on the server's plan, and changes the plan."""

    def __init__(self, registry: Registry, directory: Path | None) -> None:
        self.registry = registry
        self.directory = directory
        self._memory: Plan | None = None
        self._seen: tuple[int, int, int] | None = None
        self._changing = asyncio.Lock()
        if directory is not None:
            (directory / ACKS).mkdir(parents=True, exist_ok=True)

    # --- start-up and keeping up

    async def start(self) -> None:
        """Serve the server's plan; the first worker to start makes it from the disk."""

        def first() -> tuple[Plan, Loaded]:
            registry = self.registry
            with self._locked():
                plan = self._read()
                if plan is None:
                    prepared, loaded = registry.prepare(registry.scan(Plan()))
                    prepared = replace(prepared, generation=1)
                    self._write(prepared)
                    self._ack(0)
                    return prepared, loaded
                self._ack(0)
            return registry.prepare(plan)

        async with self._changing:
            plan, loaded = await anyio.to_thread.run_sync(first)
            self._install(plan, loaded)

    async def tick(self) -> None:
        """Install a newer plan another worker wrote, if there is one (called every tick)."""
        if self.directory is None or self._changing.locked():
            return
        signature = self._signature()
        if signature == self._seen:
            return
        plan = self._read()
        if plan is None or plan.generation <= self.registry.snapshot.plan.generation:
            self._seen = signature
            return
        async with self._changing:
            prepared, loaded = await anyio.to_thread.run_sync(self.registry.prepare, plan)
            self._install(prepared, loaded)
            self._seen = signature

    # --- changes

    async def load(self, name: str) -> Plan:
        """Serve model `name` as it is on disk now (new versions loaded, vanished ones
        dropped) on every worker; returns the plan served."""
        return await self.change(lambda base: self.registry.scan(base, [name]))

    async def unload(self, name: str) -> Plan:
        """Stop serving model `name` on every worker."""
        return await self.change(lambda base: self.registry.without(base, name))

    async def poll(self) -> None:
        """Pick up what changed in the repository on disk, without waiting for the others."""
        await self.change(
            lambda base: self.registry.scan(base, retry=False), wait=False, unless_same=True
        )

    async def change(
        self, make: Callable[[Plan], Plan], wait: bool = True, unless_same: bool = False
    ) -> Plan:
        """Make the next plan from the current one with `make`, serve it here, publish it,
        and (with `wait`) return once every worker serves it."""

        def work() -> tuple[Plan, Loaded] | None:
            registry = self.registry
            with self._locked():
                base = self._read() or registry.snapshot.plan
                plan = make(base)
                if unless_same and _same(plan, base):
                    return None
                prepared, loaded = registry.prepare(plan)
                prepared = replace(prepared, generation=base.generation + 1)
                self._write(prepared)
                return prepared, loaded

        async with self._changing:
            outcome = await anyio.to_thread.run_sync(work)
            if outcome is None:
                return self.registry.snapshot.plan
            plan, loaded = outcome
            self._install(plan, loaded)
            self._seen = self._signature()
        if wait:
            await self._confirmed(plan.generation)
        return plan

    # --- the shared directory

    def _install(self, plan: Plan, loaded: Loaded) -> None:
        self.registry.install(plan, loaded)
        self._ack(plan.generation)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        with (self.directory / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> Plan | None:
        if self.directory is None:
            return self._memory
        try:
            return Plan.from_dict(json.loads((self.directory / PLAN_FILE).read_bytes()))
        except FileNotFoundError:
            return None

    def _write(self, plan: Plan) -> None:
        if self.directory is None:
            self._memory = plan
            return
        _replace(self.directory / PLAN_FILE, plan.to_dict())

    def _signature(self) -> tuple[int, int, int] | None:
        if self.directory is None:
            return None
        try:
            stat = (self.directory / PLAN_FILE).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _ack(self, generation: int) -> None:
        if self.directory is not None:
            _replace(self.directory / ACKS / f"{os.getpid()}.json", {"generation": generation})

    async def _confirmed(self, generation: int) -> None:
        """Wait until every live worker acknowledged `generation`."""
        if self.directory is None:
            return
        deadline = time.monotonic() + CONFIRM_SECONDS
        acks = self.directory / ACKS
        while True:
            behind = [pid for pid, seen in _acks(acks).items() if seen < generation]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise NotReady(
                    f"workers {behind} did not confirm the change within {CONFIRM_SECONDS:g} s"
                )
            await asyncio.sleep(_POLL)


def forget_worker(directory: Path | None, pid: int) -> None:
    """Drop a dead worker's acknowledgement (the master's child_exit hook)."""
    if directory is not None:
        with contextlib.suppress(FileNotFoundError):
            (directory / ACKS / f"{pid}.json").unlink()


def _acks(directory: Path) -> dict[int, int]:
    """Live workers' acknowledged generations (files of processes that are gone are skipped)."""
    found: dict[int, int] = {}
    for file in directory.glob("*.json"):
        pid = int(file.stem)
        try:
            with contextlib.suppress(PermissionError):  # alive, as another user
                os.kill(pid, 0)
            found[pid] = int(json.loads(file.read_bytes())["generation"])
        except (ProcessLookupError, FileNotFoundError):
            continue
        except (ValueError, KeyError):
            found[pid] = -1
    return found


def _replace(path: Path, value: object) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(json.dumps(value).encode())
    temporary.replace(path)


def _same(plan: Plan, base: Plan) -> bool:
    return (
        plan.paths() == base.paths()
        and {n: set(v) for n, v in plan.failed.items() if v}
        == {n: set(v) for n, v in base.failed.items() if v}
        and set(plan.unloaded) == set(base.unloaded)
    )
