"""The input watch: requests only note their rows; settling counts them exactly once, in order.

Compared with feeding the same rows straight to a `DriftMonitor` and counting out-of-range
values by hand, for odd request sizes, with settling by time (`publish`), by reading (`status`)
and by volume (`SETTLE_ROWS`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from ml_service.model.artifact import load_serving
from ml_service.model.schema import ModelSchema
from ml_service.observability import inputs
from ml_service.observability.drift import DriftMonitor
from ml_service.observability.inputs import InputWatch

WINDOW = 50


@pytest.fixture(scope="module")
def schema(model_dir: Path) -> ModelSchema:
    return load_serving(model_dir).schema


def requests_of(schema: ModelSchema, sizes: list[int], seed: int = 3) -> list[np.ndarray]:
    """Random rows around the training range, some values outside it."""
    rng = np.random.default_rng(seed)
    low = np.asarray([f.train_min for f in schema.features], dtype=np.float64)
    high = np.asarray([f.train_max for f in schema.features], dtype=np.float64)
    span = high - low
    return [rng.uniform(low - 0.2 * span, high + 0.2 * span, size=(n, len(low))) for n in sizes]


def outside_counts(watch: InputWatch) -> list[float]:
    return [child._value.get() for child in watch.outside]


def expected_outside(schema: ModelSchema, rows: np.ndarray) -> list[float]:
    low = np.asarray([f.train_min for f in schema.features])
    high = np.asarray([f.train_max for f in schema.features])
    return ((rows < low) | (rows > high)).sum(axis=0).astype(float).tolist()


def test_noted_rows_are_counted_and_windowed_once_settled(schema: ModelSchema) -> None:
    watch = InputWatch(schema, WINDOW, 0.2)
    reference = DriftMonitor(schema, WINDOW, 0.2)
    before = outside_counts(watch)
    sent = requests_of(schema, [1, 1, 7, 30, 1, 2, 40, 1])
    for rows in sent:
        watch.observe(rows)
        reference.update(rows)
    assert outside_counts(watch) == before  # noted, not counted yet
    watch.settle()
    everything = np.concatenate(sent)
    added = np.subtract(outside_counts(watch), before).tolist()
    assert added == expected_outside(schema, everything)
    assert sum(added) > 0
    np.testing.assert_array_equal(watch.drift.counts, reference.counts)
    watch.settle()  # nothing noted since: nothing counted twice
    assert np.subtract(outside_counts(watch), before).tolist() == added


@pytest.mark.parametrize("read", ["publish", "status"])
def test_publishing_and_reading_settle_first(schema: ModelSchema, read: str) -> None:
    watch = InputWatch(schema, WINDOW, 0.2)
    (rows,) = requests_of(schema, [5], seed=9)
    watch.observe(rows)
    if read == "publish":
        watch.publish()
    else:
        assert watch.status().rows == 5
    assert watch.drift.filled == 5
    assert watch.published == (watch.drift.version if read == "publish" else -1)


def test_waiting_rows_are_bounded(schema: ModelSchema, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "SETTLE_ROWS", 10)
    watch = InputWatch(schema, WINDOW, 0.2)
    for rows in requests_of(schema, [3, 3, 3]):
        watch.observe(rows)
    assert watch.drift.filled == 0
    watch.observe(requests_of(schema, [1])[0])  # the 10th row settles everything noted
    assert watch.drift.filled == 10
    assert watch._pending == []
    (big,) = requests_of(schema, [25])
    watch.observe(big)
    assert watch.drift.filled == 35


def test_metrics_settle_before_answering(client: TestClient) -> None:
    """A scrape right after a request already counts that request's rows."""

    def rm_outside() -> float:
        text = client.get("/metrics").text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "ml_service_input_outside_training_range_total"
            and sample.labels.get("feature") == "RM"
        )

    before = rm_outside()
    row = {"CHAS": 0, "RM": 9.5, "TAX": 296, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 5.0}
    response = client.post("/v1/models/housing:predict", json={"instances": [row, row]})
    assert response.status_code == 200
    assert rm_outside() - before == 2
