"""What the service watches in its inputs: values outside the training range, and drift.

`InputWatch.observe` runs on every prediction request, so it does only vectorised numpy work
proportional to the rows received: one comparison against the training minima and maxima (the
counters are touched only when something is outside), and one drift window update.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import numpy as np

from ml_service.model.schema import FloatArray, ModelSchema
from ml_service.observability import metrics
from ml_service.observability.drift import DriftMonitor, DriftStatus

PUBLISH_SECONDS = 1.0


class InputWatch:
    """Training-range counters and the drift window of one worker."""

    def __init__(self, schema: ModelSchema, window: int, threshold: float) -> None:
        features = schema.features
        self.low = np.asarray(
            [-np.inf if f.train_min is None else f.train_min for f in features], dtype=np.float64
        )
        self.high = np.asarray(
            [np.inf if f.train_max is None else f.train_max for f in features], dtype=np.float64
        )
        self.outside = [metrics.OUTSIDE_TRAINING.labels(f.name) for f in features]
        self.drift = DriftMonitor(schema, window, threshold)
        self.published = -1

    def observe(self, rows: FloatArray) -> None:
        """Count values outside the training range and add the rows to the drift window."""
        outside = (rows < self.low) | (rows > self.high)
        if outside.any():
            for j, count in enumerate(outside.sum(axis=0).tolist()):
                if count:
                    self.outside[j].inc(count)
        self.drift.update(rows)

    def publish(self) -> None:
        """Share the drift window's counts with the other workers, when they changed."""
        if self.published != self.drift.version:
            self.published = self.drift.version
            metrics.publish_drift(self.drift)

    def status(self) -> DriftStatus:
        """Drift over every worker's window (this worker's alone without multi-process mode)."""
        return self.drift.status(metrics.window_counts(self.drift))


@contextlib.asynccontextmanager
async def publishing(watch: InputWatch | None) -> AsyncIterator[None]:
    """Publish the drift window every `PUBLISH_SECONDS` for the duration of the block."""
    if watch is None:
        yield
        return
    async with metrics.every(PUBLISH_SECONDS, watch.publish):
        yield
