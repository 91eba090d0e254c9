"""What the service watches in its inputs: values outside the training range, and drift.

`InputWatch.observe` runs on every prediction request, so it only notes the request's rows; the
work is done on many rows at once (`settle`): one comparison against the training minima and
maxima (the counters are touched only when something is outside) and one drift window update.
Rows are settled every `metrics.FLUSH_SECONDS` (with the drift counts published for the other
workers), before `/metrics` or the drift status is read, and whenever `SETTLE_ROWS` are waiting,
which bounds the memory held.
"""

from __future__ import annotations

import numpy as np

from ml_service.model.schema import FloatArray, ModelSchema
from ml_service.observability import metrics
from ml_service.observability.drift import DriftMonitor, DriftStatus

SETTLE_ROWS = 4096


class InputWatch:
    """Training-range counters and the drift window of one worker."""

    def __init__(
        self,
        schema: ModelSchema,
        window: int,
        threshold: float,
        labels: tuple[str, str] = ("", ""),
    ) -> None:
        features = schema.features
        self.low = np.asarray(
            [-np.inf if f.train_min is None else f.train_min for f in features], dtype=np.float64
        )
        self.high = np.asarray(
            [np.inf if f.train_max is None else f.train_max for f in features], dtype=np.float64
        )
        self.outside = [metrics.OUTSIDE_TRAINING.labels(*labels, f.name) for f in features]
        self.drift = DriftMonitor(schema, window, threshold, labels)
        self.published = -1
        self._pending: list[FloatArray] = []
        self._pending_rows = 0

    def observe(self, rows: FloatArray) -> None:
        """Note a request's rows (not to be modified afterwards) for the next `settle`."""
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= SETTLE_ROWS:
            self.settle()

    def settle(self) -> None:
        """Count noted values outside the training range and add the rows to the drift window."""
        if not self._pending:
            return
        pending = self._pending
        rows = pending[0] if len(pending) == 1 else np.concatenate(pending)
        self._pending = []
        self._pending_rows = 0
        outside = (rows < self.low) | (rows > self.high)
        if outside.any():
            for j, count in enumerate(outside.sum(axis=0).tolist()):
                if count:
                    self.outside[j].inc(count)
        self.drift.update(rows)

    def publish(self) -> None:
        """Settle, and share the drift window's counts with the other workers when they changed."""
        self.settle()
        if self.published != self.drift.version:
            self.published = self.drift.version
            metrics.publish_drift(self.drift)

    def status(self) -> DriftStatus:
        """Drift over every worker's window (this worker's alone without multi-process mode)."""
        self.settle()
        return self.drift.status(metrics.window_counts(self.drift))
