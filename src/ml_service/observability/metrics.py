"""Prometheus metrics, correct with many worker processes.

With `PROMETHEUS_MULTIPROC_DIR` set (as `ml-service serve` does before any worker starts),
every worker writes its samples to files there and `/metrics` sums them; without it (tests
in-process) the default registry is used.
"""

from __future__ import annotations

import os

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

from ml_service.model.schema import FloatArray

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "ml_service_http_requests_total",
    "HTTP requests answered, by route template, dialect, method and status code.",
    ["route", "dialect", "method", "status"],
)
LATENCY = Histogram(
    "ml_service_http_request_duration_seconds",
    "Time from request start to the last response byte, by route template and dialect.",
    ["route", "dialect"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
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
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 100000),
)
PREDICTED = Histogram(
    "ml_service_prediction_value",
    "Predicted values (the model's target unit).",
    buckets=(5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60),
)
MODEL_INFO = Gauge(
    "ml_service_model_info",
    "The served model: always 1, labelled with its name and version.",
    ["name", "version"],
    multiprocess_mode="max",
)


def observe_many(histogram: Histogram, values: FloatArray) -> None:
    """Add many observations at once (one bucket increment per bucket, not per value)."""
    if len(values) == 0:
        return
    upper = np.asarray(histogram._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(upper, values, side="left"), minlength=len(upper))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(values.sum()))


def render() -> tuple[bytes, str]:
    """The exposition text of every worker's metrics, and its content type."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (gunicorn's child_exit hook)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
