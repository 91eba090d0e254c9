"""Drift: PSI per feature over a rolling window, flagged above the threshold.

Unit tests drive `DriftMonitor` with the trained model's schema; the server test feeds a real
two-worker server unshifted rows (the flag stays down) and then shifted rows (it rises), and
reads both `/v1/models/housing` and `/metrics`.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support.server import Server, running_server

from ml_service.model.artifact import load_serving
from ml_service.model.schema import ModelSchema
from ml_service.observability.drift import MIN_ROWS, DriftMonitor

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "housing.csv"
THRESHOLD = 0.2


@pytest.fixture(scope="module")
def schema(model_dir: Path) -> ModelSchema:
    return load_serving(model_dir).schema


@pytest.fixture(scope="module")
def housing(schema: ModelSchema) -> np.ndarray:
    """The data set's feature columns, in the schema's order."""
    with DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.asarray([[float(r[name]) for name in schema.names] for r in rows])


def shifted(rows: np.ndarray, schema: ModelSchema) -> np.ndarray:
    """Bigger houses in lower-status, higher-tax towns: RM +2, LSTAT x1.8, TAX +250."""
    out = rows.copy()
    names = list(schema.names)
    out[:, names.index("RM")] += 2.0
    out[:, names.index("LSTAT")] = np.minimum(out[:, names.index("LSTAT")] * 1.8, 100)
    out[:, names.index("TAX")] += 250
    return out


def test_unshifted_inputs_stay_below_the_threshold(
    schema: ModelSchema, housing: np.ndarray
) -> None:
    monitor = DriftMonitor(schema, window=1000, threshold=THRESHOLD)
    rng = np.random.default_rng(7)
    monitor.update(housing[rng.choice(len(housing), 800)])
    status = monitor.status()
    assert status.judged
    assert not status.drifted, status
    assert max(f.psi for f in status.features) < 0.1


def test_shifted_inputs_raise_the_flag_on_the_shifted_features(
    schema: ModelSchema, housing: np.ndarray
) -> None:
    monitor = DriftMonitor(schema, window=1000, threshold=THRESHOLD)
    monitor.update(shifted(housing, schema))
    status = monitor.status()
    flagged = {f.feature for f in status.features if f.drifted}
    assert {"RM", "LSTAT", "TAX"} <= flagged
    assert "PTRATIO" not in flagged
    assert status.as_dict()["drifted"] is True


def test_the_window_rolls_back_to_normal(schema: ModelSchema, housing: np.ndarray) -> None:
    monitor = DriftMonitor(schema, window=300, threshold=THRESHOLD)
    monitor.update(shifted(housing[:300], schema))
    assert monitor.status().drifted
    rng = np.random.default_rng(3)
    for _ in range(30):  # 30 requests of 13 rows: the shifted rows are pushed out
        monitor.update(housing[rng.choice(len(housing), 13)])
    assert not monitor.status().drifted


def test_few_rows_are_never_flagged(schema: ModelSchema, housing: np.ndarray) -> None:
    monitor = DriftMonitor(schema, window=1000, threshold=THRESHOLD)
    monitor.update(shifted(housing[: MIN_ROWS - 1], schema))
    status = monitor.status()
    assert not status.judged
    assert not status.drifted
    assert max(f.psi for f in status.features) > THRESHOLD


def test_window_counts_equal_a_recount_of_the_last_rows(
    schema: ModelSchema, housing: np.ndarray
) -> None:
    """Odd chunk sizes wrap the ring buffer; the counts always describe the newest rows."""
    window = 97
    monitor = DriftMonitor(schema, window=window, threshold=THRESHOLD)
    fed: list[np.ndarray] = []
    rng = np.random.default_rng(11)
    for size in [1, 5, 96, 2, 97, 150, 3, 40, 41, 1, 13]:
        chunk = housing[rng.choice(len(housing), size)]
        monitor.update(chunk)
        fed.append(chunk)
        last = np.concatenate(fed)[-window:]
        expected = np.bincount(
            monitor.reference.bins(last).ravel(), minlength=monitor.reference.slots
        )
        np.testing.assert_array_equal(monitor.counts, expected)
        assert monitor.status().rows == len(last)


def drift_of(server: Server) -> dict[str, object]:
    body = httpx.get(server.url + "/v1/models/housing", timeout=10).json()
    drift: dict[str, object] = body["drift"]
    return drift


def metric(text: str, name: str, feature: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("feature") == feature:
                return float(sample.value)
    raise AssertionError(f"{name} of {feature} not in /metrics")


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "ML_SERVICE_WORKERS": "2",
        "ML_SERVICE_DRIFT_WINDOW": "500",
        "ML_SERVICE_LOG_LEVEL": "warning",
    }
    with running_server(model_dir, tmp_path_factory.mktemp("drift"), env=env) as running:
        yield running


def send(server: Server, rows: np.ndarray, names: tuple[str, ...], per_request: int) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for start in range(0, len(rows), per_request):
            chunk = rows[start : start + per_request]
            body = {"instances": [dict(zip(names, map(float, row), strict=True)) for row in chunk]}
            response = client.post("/v1/models/housing:predict", json=body)
            assert response.status_code == 200, response.text


def wait_for_drift(server: Server, drifted: bool, rows_at_least: int) -> dict[str, object]:
    """Poll the model status until it says `drifted` (workers publish about once a second)."""
    deadline = time.monotonic() + 15
    while True:
        drift = drift_of(server)
        if drift["drifted"] is drifted and int(drift["window_rows"]) >= rows_at_least:  # type: ignore[call-overload]
            return drift
        assert time.monotonic() < deadline, f"drift never became {drifted}: {drift}"
        time.sleep(0.2)


@pytest.mark.server
@pytest.mark.slow
def test_server_flags_shifted_inputs_and_not_unshifted_ones(
    server: Server, schema: ModelSchema, housing: np.ndarray
) -> None:
    before = drift_of(server)
    assert before["judged"] is False
    assert before["threshold"] == THRESHOLD

    send(server, housing, schema.names, per_request=10)
    calm = wait_for_drift(server, drifted=False, rows_at_least=400)
    assert calm["judged"] is True
    features = calm["features"]
    assert isinstance(features, dict)
    assert all(not f["drifted"] for f in features.values()), calm
    text = httpx.get(server.url + "/metrics", timeout=10).text
    assert metric(text, "ml_service_drift_detected", "RM") == 0
    assert metric(text, "ml_service_drift_psi", "RM") < THRESHOLD

    # Two full windows of shifted rows push every unshifted row out of both workers' windows.
    moved = shifted(np.concatenate([housing, housing]), schema)
    send(server, moved, schema.names, per_request=25)
    alarm = wait_for_drift(server, drifted=True, rows_at_least=500)
    features = alarm["features"]
    assert isinstance(features, dict)
    assert features["RM"]["drifted"] is True
    assert features["PTRATIO"]["drifted"] is False
    text = httpx.get(server.url + "/metrics", timeout=10).text
    assert metric(text, "ml_service_drift_detected", "RM") == 1
    assert metric(text, "ml_service_drift_psi", "RM") > THRESHOLD
    assert metric(text, "ml_service_drift_detected", "PTRATIO") == 0
