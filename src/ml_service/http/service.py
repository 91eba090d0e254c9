"""What one worker process holds: settings, the registry of served models, the request tally,
and the periodic work that keeps metrics and the registry current."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from ml_service.config import Settings
from ml_service.errors import NotReady
from ml_service.http.body import Budget
from ml_service.http.codecs.base import Limits
from ml_service.observability.metrics import FLUSH_SECONDS, Tally, every
from ml_service.repository.registry import Registry
from ml_service.repository.reload import Coordinator, shared_dir

log = logging.getLogger("ml_service")


class Service:
    """One worker's state. `draining` turns readiness off the moment a stop begins."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry(settings)
        self.coordinator = Coordinator(self.registry, shared_dir())
        self.tally = Tally()
        self.limits = Limits(settings.max_rows, settings.max_error_details)
        self.budget = Budget(settings.max_body_bytes_in_progress)
        self.api_keys = settings.api_key_set()
        self.draining = False
        self.load_failed = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The worker's lifetime: load the models, then keep everything current until stop."""
        await self.coordinator.start()
        # What is loaded now lives as long as the worker: keep it out of the garbage
        # collector's full passes, which otherwise stall requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        self.load_failed = self.settings.model_repository is None and not self.registry.ready
        async with every(FLUSH_SECONDS, self.tick), self._polling():
            yield
            self.draining = True

    async def tick(self) -> None:
        """Write the tallies and pick up a plan another worker published."""
        self.tally.flush()
        self.registry.flush()
        await self.coordinator.tick()

    @contextlib.asynccontextmanager
    async def _polling(self) -> AsyncIterator[None]:
        """With `ML_SERVICE_REPOSITORY_POLL_SECONDS`, pick up new versions from the disk."""
        seconds = self.settings.repository_poll_seconds
        if seconds is None:
            yield
            return

        async def poll() -> None:
            try:
                await self.coordinator.poll()
            except Exception:
                log.exception("repository poll failed", extra={"event": "poll_failed"})

        async with every(seconds, poll, last=False):
            yield

    @property
    def ready(self) -> bool:
        return self.registry.ready and not self.draining

    def require_ready(self) -> None:
        """503 unless this worker serves and is not stopping."""
        if self.draining:
            raise NotReady("the server is shutting down")
        if not self.registry.ready:
            registry = self.registry
            if registry.snapshot.loading:
                raise NotReady("the models are still loading")
            raise NotReady(f"no model could be loaded: {registry.reasons() or 'none found'}")
