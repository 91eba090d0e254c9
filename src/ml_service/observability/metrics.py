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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator

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
from ml_service.model.schema import ModelSchema
from ml_service.observability.drift import DriftMonitor, IntArray, slot_labels
from ml_service.predictor import Prediction

REQUESTS = Counter(
    "ml_service_http_requests_total",
    "HTTP requests answered, by route template, dialect, method, status code and model version.",
    ["route", "dialect", "method", "status", "model", "version"],
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ROWS_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 100000)
LATENCY = Histogram(
    "ml_service_http_request_duration_seconds",
    "Time from request start to the last response byte, by route template, dialect, status "
    "and model version.",
    ["route", "dialect", "status", "model", "version"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "ml_service_http_requests_in_flight",
    "Requests being handled right now.",
    multiprocess_mode="livesum",
)
ROWS = Histogram(
    "ml_service_prediction_rows",
    "Rows per prediction request, by model version and dialect.",
    ["model", "version", "dialect"],
    buckets=ROWS_BUCKETS,
)
PREDICTED_NAME = "ml_service_prediction_value"
PREDICTED_HELP = "Predicted values of a regressor (the target's unit), by model version."
PREDICTED_CLASS = Counter(
    "ml_service_predicted_class_total",
    "Rows predicted as each class by a classifier, by model version.",
    ["model", "version", "class"],
)
MODEL_INFO = Gauge(
    "ml_service_model_info",
    "1 for each model version the workers serve, 0 once it is unloaded.",
    ["name", "version"],
    multiprocess_mode="max",
)
OUTSIDE_TRAINING = Counter(
    "ml_service_input_outside_training_range_total",
    "Input values outside the range seen in training (still predicted), by model version and "
    "feature.",
    ["model", "version", "feature"],
)
DRIFT_WINDOW = Gauge(
    "ml_service_drift_window_values",
    "Values in the recent-input window, by model version, feature and training bin (summed over "
    "workers).",
    ["model", "version", "feature", "bin"],
    multiprocess_mode="livesum",
)
DRIFT_WINDOW_NAME = "ml_service_drift_window_values"


FLUSH_SECONDS = 0.2
# Predicted-value buckets: this many between the lowest and highest target seen in training.
VALUE_BUCKETS = 10


class Tally:
    """This worker's request metrics, added up in memory and written to Prometheus in one go.

    In multi-process mode every write to a metric is a locked write into a memory-mapped file,
    and a prediction request made nine of them. Requests add to plain dicts here instead, on the
    event loop's thread; `flush` writes the sums (every `FLUSH_SECONDS`, before `/metrics`
    answers, and at shutdown). So `/metrics` is exact for the worker that answers it, and other
    workers' requests appear in it within `FLUSH_SECONDS`.
    """

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, int, str, str], int] = {}
        self.latency: dict[tuple[str, str, int, str, str], list[float]] = {}
        self.in_flight = 0

    def request(
        self,
        route: str,
        dialect: str,
        method: str,
        status: int,
        seconds: float,
        model: str = "",
        version: str = "",
    ) -> None:
        key = (route, dialect, method, status, model, version)
        self.requests[key] = self.requests.get(key, 0) + 1
        where = (route, dialect, status, model, version)
        slots = self.latency.get(where)
        if slots is None:
            slots = self.latency[where] = _slots(LATENCY_BUCKETS)
        _add(slots, LATENCY_BUCKETS, seconds)

    def flush(self) -> None:
        """Write everything counted since the last flush."""
        for (route, dialect, method, status, model, version), count in self.requests.items():
            REQUESTS.labels(route, dialect, method, str(status), model, version).inc(count)
        self.requests.clear()
        for (route, dialect, status, model, version), slots in self.latency.items():
            _write(LATENCY.labels(route, dialect, str(status), model, version), slots)
        IN_FLIGHT.set(self.in_flight)


class ModelTally:
    """One model version's prediction metrics, tallied like `Tally`: rows per request, and the
    predicted values (buckets from the target's training range) or classes."""

    def __init__(self, schema: ModelSchema, name: str, version: str) -> None:
        self.labels = (name, version)
        self.rows: dict[str, list[float]] = {}
        target = schema.target
        self.classes = [str(c) for c in target.classes] if target.classes is not None else None
        self.class_counts: list[int] = [0] * len(self.classes or ())
        self.buckets = value_buckets(target.train_min, target.train_max)
        self.predicted = _slots(self.buckets)
        self.histogram: Histogram | None = None
        if self.classes is None:
            # Every model has its own buckets: one unregistered histogram per version, whose
            # samples the multi-process collector merges by name (`_gather` adds it otherwise).
            self.histogram = Histogram(
                PREDICTED_NAME,
                PREDICTED_HELP,
                ["model", "version"],
                buckets=self.buckets,
                registry=None,
            )
            _VALUE_HISTOGRAMS[id(self)] = self.histogram
        MODEL_INFO.labels(name, version).set(1)

    def prediction(self, dialect: str, prediction: Prediction) -> None:
        slots = self.rows.get(dialect)
        if slots is None:
            slots = self.rows[dialect] = _slots(ROWS_BUCKETS)
        values = prediction.values
        count = len(values) if values is not None else len(prediction)
        _add(slots, ROWS_BUCKETS, count)
        if values is not None:
            if count == 1:
                _add(self.predicted, self.buckets, float(values[0]))
            elif count:
                counts = np.bincount(
                    np.searchsorted(self.buckets, values, side="left"),
                    minlength=len(self.buckets) + 1,
                )
                for i, n in enumerate(counts.tolist()):
                    self.predicted[i] += n
                self.predicted[-1] += float(values.sum())
        elif prediction.classes is not None:
            if count == 1:
                self.class_counts[int(prediction.classes[0])] += 1
            elif count:
                found = np.bincount(prediction.classes, minlength=len(self.class_counts))
                for i, n in enumerate(found.tolist()):
                    self.class_counts[i] += n

    def flush(self) -> None:
        name, version = self.labels
        for dialect, slots in self.rows.items():
            _write(ROWS.labels(name, version, dialect), slots)
        if self.histogram is not None:
            _write(self.histogram.labels(name, version), self.predicted)
        if self.classes is not None:
            for label, count in zip(self.classes, self.class_counts, strict=True):
                if count:
                    PREDICTED_CLASS.labels(name, version, label).inc(count)
            self.class_counts = [0] * len(self.classes)

    def retire(self) -> None:
        """The version is no longer served: mark it so and stop collecting its histogram."""
        MODEL_INFO.labels(*self.labels).set(0)
        _VALUE_HISTOGRAMS.pop(id(self), None)


_VALUE_HISTOGRAMS: dict[int, Histogram] = {}


def value_buckets(low: float | None, high: float | None) -> tuple[float, ...]:
    """Histogram buckets spanning a target's training range, rounded to 3 significant digits;
    Prometheus's defaults when the range is unknown."""
    if low is None or high is None or not high > low:
        return tuple(Histogram.DEFAULT_BUCKETS[:-1])
    edges = np.linspace(low, high, VALUE_BUCKETS + 1)
    rounded = sorted({float(f"{edge:.3g}") for edge in edges.tolist()})
    return tuple(rounded)


@contextlib.asynccontextmanager
async def every(
    seconds: float, action: Callable[[], Awaitable[None]], last: bool = True
) -> AsyncIterator[None]:
    """Run `action` on the event loop every `seconds` while the block runs (and, with `last`,
    once at its end)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            await action()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if last:
            await action()


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
    families = list(REGISTRY.collect())
    values = [f for h in _VALUE_HISTOGRAMS.values() for f in h.collect()]
    if values:
        merged = values[0]
        for family in values[1:]:
            merged.samples.extend(family.samples)
        families.append(merged)
    return families


def publish_drift(monitor: DriftMonitor) -> None:
    """Write this worker's window counts to the drift gauge (read by every worker)."""
    name, version = monitor.labels
    for (feature, b), value in zip(
        slot_labels(monitor.reference), monitor.counts.tolist(), strict=True
    ):
        DRIFT_WINDOW.labels(name, version, feature, b).set(value)


def window_counts(monitor: DriftMonitor, families: Iterable[Metric] | None = None) -> IntArray:
    """The drift window's count per slot, summed over every worker's published window."""
    if not multiprocess_mode():
        return monitor.counts
    publish_drift(monitor)
    name, version = monitor.labels
    slots = {label: k for k, label in enumerate(slot_labels(monitor.reference))}
    counts = np.zeros(monitor.reference.slots, dtype=np.int64)
    for family in families if families is not None else _gather():
        if family.name != DRIFT_WINDOW_NAME:
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != name or labels.get("version") != version:
                continue
            k = slots.get((labels.get("feature", ""), labels.get("bin", "")))
            if k is not None:
                counts[k] += int(sample.value)
    return counts


def drift_families(monitors: Iterable[DriftMonitor], families: list[Metric]) -> list[Metric]:
    """The computed drift gauges of every served model version: PSI and flag per feature,
    window size, and the threshold."""
    psi = GaugeMetricFamily(
        "ml_service_drift_psi",
        "Population stability index of recent inputs against the training data, by model "
        "version and feature.",
        labels=["model", "version", "feature"],
    )
    flag = GaugeMetricFamily(
        "ml_service_drift_detected",
        "1 when a feature's PSI is above the threshold (and the window is large enough), else 0.",
        labels=["model", "version", "feature"],
    )
    rows = GaugeMetricFamily(
        "ml_service_drift_window_rows",
        "Input rows in the drift window (all workers), by model version.",
        labels=["model", "version"],
    )
    threshold = GaugeMetricFamily(
        "ml_service_drift_threshold", "PSI above which a feature is flagged as drifted."
    )
    limit: float | None = None
    for monitor in monitors:
        status = monitor.status(window_counts(monitor, families))
        name, version = monitor.labels
        for feature in status.features:
            psi.add_metric([name, version, feature.feature], feature.psi)
            flag.add_metric([name, version, feature.feature], float(feature.drifted))
        rows.add_metric([name, version], status.rows)
        limit = status.threshold
    if limit is not None:
        threshold.add_metric([], limit)
    return [psi, flag, rows, threshold]


def render(monitors: Iterable[DriftMonitor] = ()) -> tuple[bytes, str]:
    """The exposition text of every worker's metrics, and its content type."""
    monitors = list(monitors)
    for monitor in monitors:
        publish_drift(monitor)
    families = _gather()
    families += drift_families(monitors, families)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (gunicorn's child_exit hook)."""
    if os.environ.get(METRICS_DIR_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
