"""Prometheus metrics, correct with many worker processes.

With `PROMETHEUS_MULTIPROC_DIR` set (as `ml-service serve` does before any worker starts),
every worker writes its samples to files there and `/metrics` sums them; without it (tests
in-process) the default registry is used. The drift gauges (`ml_service_drift_*`) are computed
when `/metrics` is read, from the bin counts every worker publishes. `docs/observability.md`
describes every metric (a test keeps the two in step).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ml_service.config import METRICS_DIR_ENV
from ml_service.model.schema import FloatArray
from ml_service.observability.drift import DriftMonitor, IntArray, slot_labels

REQUESTS = Counter(
    "ml_service_http_requests_total",
    "HTTP requests answered, by route template, dialect, method and status code.",
    ["route", "dialect", "method", "status"],
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ROWS_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 100000)
PREDICTED_BUCKETS = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60)
LATENCY = Histogram(
    "ml_service_http_request_duration_seconds",
    "Time from request start to the last response byte, by route template, dialect and status.",
    ["route", "dialect", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "ml_service_http_requests_in_flight",
    "Requests being handled right now.",
    multiprocess_mode="livesum",
)
ROWS = Histogram(
    "ml_service_prediction_rows",
    "Rows per prediction request, by dialect.",
    ["dialect"],
    buckets=ROWS_BUCKETS,
)
PREDICTED = Histogram(
    "ml_service_prediction_value",
    "Predicted values (the model's target unit).",
    buckets=PREDICTED_BUCKETS,
)
MODEL_INFO = Gauge(
    "ml_service_model_info",
    "The served model: always 1, labelled with its name and version.",
    ["name", "version"],
    multiprocess_mode="max",
)
OUTSIDE_TRAINING = Counter(
    "ml_service_input_outside_training_range_total",
    "Input values outside the range seen in training (still predicted), by feature.",
    ["feature"],
)
DRIFT_WINDOW = Gauge(
    "ml_service_drift_window_values",
    "Values in the recent-input window, by feature and training-decile bin (summed over workers).",
    ["feature", "bin"],
    multiprocess_mode="livesum",
)
DRIFT_WINDOW_NAME = "ml_service_drift_window_values"


FLUSH_SECONDS = 0.2


class Tally:
    """This worker's request metrics, added up in memory and written to Prometheus in one go.

    In multi-process mode every write to a metric is a locked write into a memory-mapped file,
    and a prediction request made nine of them. Requests add to plain lists here instead, on the
    event loop's thread; `flush` writes the sums (every `FLUSH_SECONDS`, before `/metrics`
    answers, and at shutdown). So `/metrics` is exact for the worker that answers it, and other
    workers' requests appear in it within `FLUSH_SECONDS`.
    """

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, int], int] = {}
        self.latency: dict[tuple[str, str, int], list[float]] = {}
        self.rows: dict[str, list[float]] = {}
        self.predicted = _slots(PREDICTED_BUCKETS)
        self.in_flight = 0

    def request(self, route: str, dialect: str, method: str, status: int, seconds: float) -> None:
        key = (route, dialect, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        slots = self.latency.get((route, dialect, status))
        if slots is None:
            slots = self.latency[(route, dialect, status)] = _slots(LATENCY_BUCKETS)
        _add(slots, LATENCY_BUCKETS, seconds)

    def prediction(self, dialect: str, predictions: FloatArray) -> None:
        slots = self.rows.get(dialect)
        if slots is None:
            slots = self.rows[dialect] = _slots(ROWS_BUCKETS)
        _add(slots, ROWS_BUCKETS, len(predictions))
        if len(predictions) == 1:
            _add(self.predicted, PREDICTED_BUCKETS, float(predictions[0]))
        elif len(predictions):
            counts = np.bincount(
                np.searchsorted(PREDICTED_BUCKETS, predictions, side="left"),
                minlength=len(PREDICTED_BUCKETS) + 1,
            )
            for i, count in enumerate(counts.tolist()):
                self.predicted[i] += count
            self.predicted[-1] += float(predictions.sum())

    def flush(self) -> None:
        """Write everything counted since the last flush."""
        for (route, dialect, method, status), count in self.requests.items():
            REQUESTS.labels(route, dialect, method, str(status)).inc(count)
        self.requests.clear()
        for (route, dialect, status), slots in self.latency.items():
            _write(LATENCY.labels(route, dialect, str(status)), slots)
        for dialect, slots in self.rows.items():
            _write(ROWS.labels(dialect), slots)
        _write(PREDICTED, self.predicted)
        IN_FLIGHT.set(self.in_flight)

    def flushing(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Flush every `FLUSH_SECONDS` for the duration of the block, and once at its end."""
        return every(FLUSH_SECONDS, self.flush)


@contextlib.asynccontextmanager
async def every(seconds: float, action: Callable[[], None]) -> AsyncIterator[None]:
    """Run `action` on the event loop every `seconds` while the block runs, and once at its end."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            action()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        action()


def _slots(buckets: tuple[float, ...]) -> list[float]:
    """Counts per bucket (the last one +Inf), then the sum of the observed values."""
    return [0.0] * (len(buckets) + 2)


def _add(slots: list[float], buckets: tuple[float, ...], value: float) -> None:
    slots[bisect_left(buckets, value)] += 1
    slots[-1] += value


def _write(histogram: Histogram, slots: list[float]) -> None:
    """Add counted observations to a histogram child (prometheus_client has no bulk observe)."""
    buckets = histogram._buckets
    for i in range(len(buckets)):
        if slots[i]:
            buckets[i].inc(slots[i])
            slots[i] = 0.0
    if slots[-1]:
        histogram._sum.inc(slots[-1])
        slots[-1] = 0.0


def multiprocess_mode() -> bool:
    return bool(os.environ.get(METRICS_DIR_ENV))


class _Fixed(Collector):
    """Already-collected metric families, served as they are."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _gather() -> list[Metric]:
    """Every metric family, summed over all workers in multi-process mode."""
    if multiprocess_mode():
        collector = multiprocess.MultiProcessCollector(None)  # type: ignore[no-untyped-call]
        return list(collector.collect())  # type: ignore[no-untyped-call]
    return list(REGISTRY.collect())


def publish_drift(monitor: DriftMonitor) -> None:
    """Write this worker's window counts to the drift gauge (read by every worker)."""
    for (feature, b), value in zip(
        slot_labels(monitor.reference), monitor.counts.tolist(), strict=True
    ):
        DRIFT_WINDOW.labels(feature, b).set(value)


def window_counts(monitor: DriftMonitor, families: Iterable[Metric] | None = None) -> IntArray:
    """The drift window's count per slot, summed over every worker's published window."""
    if not multiprocess_mode():
        return monitor.counts
    publish_drift(monitor)
    slots = {label: k for k, label in enumerate(slot_labels(monitor.reference))}
    counts = np.zeros(monitor.reference.slots, dtype=np.int64)
    for family in families if families is not None else _gather():
        if family.name != DRIFT_WINDOW_NAME:
            continue
        for sample in family.samples:
            k = slots.get((sample.labels.get("feature", ""), sample.labels.get("bin", "")))
            if k is not None:
                counts[k] += int(sample.value)
    return counts


def drift_families(monitor: DriftMonitor, counts: IntArray) -> list[Metric]:
    """The computed drift gauges: PSI and flag per feature, window size and threshold."""
    status = monitor.status(counts)
    psi = GaugeMetricFamily(
        "ml_service_drift_psi",
        "Population stability index of recent inputs against the training data, by feature.",
        labels=["feature"],
    )
    flag = GaugeMetricFamily(
        "ml_service_drift_detected",
        "1 when a feature's PSI is above the threshold (and the window is large enough), else 0.",
        labels=["feature"],
    )
    for feature in status.features:
        psi.add_metric([feature.feature], feature.psi)
        flag.add_metric([feature.feature], float(feature.drifted))
    rows = GaugeMetricFamily(
        "ml_service_drift_window_rows", "Input rows in the drift window (all workers)."
    )
    rows.add_metric([], status.rows)
    threshold = GaugeMetricFamily(
        "ml_service_drift_threshold", "PSI above which a feature is flagged as drifted."
    )
    threshold.add_metric([], status.threshold)
    return [psi, flag, rows, threshold]


def render(monitor: DriftMonitor | None = None) -> tuple[bytes, str]:
    """The exposition text of every worker's metrics, and its content type."""
    if monitor is not None:
        publish_drift(monitor)
    families = _gather()
    if monitor is not None:
        families += drift_families(monitor, window_counts(monitor, families))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (gunicorn's child_exit hook)."""
    if os.environ.get(METRICS_DIR_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
