"""The in-memory tally writes exactly what direct observations would have written."""

from __future__ import annotations

import time

import numpy as np
from prometheus_client import REGISTRY

from ml_service.observability.metrics import FLUSH_SECONDS, PREDICTED_BUCKETS, Tally


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_tally_matches_direct_observation() -> None:
    route, dialect = "/tally-test", "tally"
    values = np.array([3.0, 5.0, 5.5, 24.0, 61.0])
    # In-process apps of other tests flush their own tallies every FLUSH_SECONDS: let them.
    time.sleep(3 * FLUSH_SECONDS)
    before = {
        le: sample("ml_service_prediction_value_bucket", le=le)
        for le in ("5.0", "10.0", "25.0", "60.0", "+Inf")
    }
    before_sum = sample("ml_service_prediction_value_sum")

    def requests(status: str) -> float:
        return sample(
            "ml_service_http_requests_total",
            route=route,
            dialect=dialect,
            method="POST",
            status=status,
        )

    tally = Tally()
    tally.request(route, dialect, "POST", 200, 0.003)
    tally.request(route, dialect, "POST", 200, 0.0004)
    tally.request(route, dialect, "POST", 422, 0.02)
    tally.prediction(dialect, values)
    tally.prediction(dialect, np.array([24.0]))
    assert requests("200") == 0
    tally.flush()
    tally.flush()  # a second flush adds nothing
    assert requests("200") == 2
    assert requests("422") == 1
    latency = "ml_service_http_request_duration_seconds_bucket"
    assert sample(latency, route=route, dialect=dialect, status="200", le="0.0005") == 1
    assert sample(latency, route=route, dialect=dialect, status="200", le="0.005") == 2
    assert sample("ml_service_prediction_rows_count", dialect=dialect) == 2
    assert sample("ml_service_prediction_rows_sum", dialect=dialect) == 6
    expected = {"5.0": 2, "10.0": 3, "25.0": 5, "60.0": 5, "+Inf": 6}
    for le, count in expected.items():
        assert sample("ml_service_prediction_value_bucket", le=le) - before[le] == count
    assert sample("ml_service_prediction_value_sum") - before_sum == values.sum() + 24.0
    assert len(PREDICTED_BUCKETS) == 11
