"""The in-memory tallies write exactly what direct observations would have written."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY

from ml_service.model.schema import Feature, ModelSchema, Target
from ml_service.observability import metrics
from ml_service.observability.metrics import ModelTally, Tally, value_buckets
from ml_service.predictor import Prediction


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def test_request_tally_matches_direct_observation() -> None:
    route, dialect = "/tally-test", "tally"

    def requests(status: str) -> float:
        return sample(
            "ml_service_http_requests_total",
            route=route,
            dialect=dialect,
            method="POST",
            status=status,
            model="m",
            version="v",
        )

    tally = Tally()
    tally.request(route, dialect, "POST", 200, 0.003, "m", "v")
    tally.request(route, dialect, "POST", 200, 0.0004, "m", "v")
    tally.request(route, dialect, "POST", 422, 0.02, "m", "v")
    assert requests("200") == 0
    tally.flush()
    tally.flush()  # a second flush adds nothing
    assert requests("200") == 2
    assert requests("422") == 1
    latency = "ml_service_http_request_duration_seconds_bucket"
    where = {"route": route, "dialect": dialect, "model": "m", "version": "v"}
    assert sample(latency, **where, status="200", le="0.0005") == 1
    assert sample(latency, **where, status="200", le="0.005") == 2


def regressor(name: str, low: float | None = 0.0, high: float | None = 100.0) -> ModelSchema:
    return ModelSchema(name, (Feature("x"),), Target("y", train_min=low, train_max=high))


def value_samples(name: str) -> dict[str, float]:
    """The predicted-value histogram of model `name`, as `/metrics` renders it."""
    text, _ = metrics.render()
    found = {}
    for line in text.decode().splitlines():
        if line.startswith("ml_service_prediction_value_") and f'model="{name}"' in line:
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def test_model_tally_buckets_come_from_the_targets_training_range() -> None:
    tally = ModelTally(regressor("tally-range"), "tally-range", "1")
    assert tally.buckets == tuple(float(b) for b in range(0, 101, 10))
    values = np.array([3.0, 10.0, 55.0, 101.0])
    tally.prediction("v1", Prediction(values=values))
    tally.prediction("v1", Prediction(values=np.array([24.0])))
    tally.flush()
    found = value_samples("tally-range")
    bucket = 'ml_service_prediction_value_bucket{{le="{}",model="tally-range",version="1"}}'
    assert found[bucket.format("10.0")] == 2
    assert found[bucket.format("30.0")] == 3
    assert found[bucket.format("100.0")] == 4
    assert found[bucket.format("+Inf")] == 5
    assert found['ml_service_prediction_value_sum{model="tally-range",version="1"}'] == 193.0
    rows = {"model": "tally-range", "version": "1", "dialect": "v1"}
    assert sample("ml_service_prediction_rows_count", **rows) == 2
    assert sample("ml_service_prediction_rows_sum", **rows) == 5
    assert sample("ml_service_model_info", name="tally-range", version="1") == 1
    tally.retire()
    assert sample("ml_service_model_info", name="tally-range", version="1") == 0
    assert value_samples("tally-range") == {}


def test_classifier_tally_counts_each_class() -> None:
    schema = ModelSchema("tally-classes", (Feature("x"),), Target("y", classes=("no", "yes")))
    tally = ModelTally(schema, "tally-classes", "1")
    tally.prediction("original", Prediction(classes=np.array([1]), probabilities=np.ones((1, 2))))
    tally.prediction("v2", Prediction(classes=np.array([0, 1, 1]), probabilities=np.ones((3, 2))))
    tally.flush()
    counts = "ml_service_predicted_class_total"
    assert sample(counts, model="tally-classes", version="1", **{"class": "yes"}) == 3
    assert sample(counts, model="tally-classes", version="1", **{"class": "no"}) == 1
    assert value_samples("tally-classes") == {}


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (5.0, 50.0, (5.0, 9.5, 14.0, 18.5, 23.0, 27.5, 32.0, 36.5, 41.0, 45.5, 50.0)),
        (
            0.0,
            0.0123456,
            (
                0.0,
                0.00123,
                0.00247,
                0.0037,
                0.00494,
                0.00617,
                0.00741,
                0.00864,
                0.00988,
                0.0111,
                0.0123,
            ),
        ),
        (None, 5.0, metrics.Histogram.DEFAULT_BUCKETS[:-1]),
        (3.0, 3.0, metrics.Histogram.DEFAULT_BUCKETS[:-1]),
    ],
)
def test_value_buckets(low: float | None, high: float, expected: tuple[float, ...]) -> None:
    assert value_buckets(low, high) == tuple(expected)
