"""`/metrics` of a real multi-worker server: counts are exact, every metric is documented."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.support.server import Server, running_server

from ml_service.observability.metrics import FLUSH_SECONDS

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "observability.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "ml-service.json"
SAMPLE = (ROOT / "data" / "sample_request.json").read_bytes()
WORKERS = 3
FEATURES = ("RM", "LSTAT", "TAX")
REQUESTS = 240
# Series only a classifier writes (this server serves the default regressor).
CLASSIFIER_ONLY = {"ml_service_predicted_class_total"}
CLIENTS = 12
SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in a Prometheus text exposition."""
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = dict(LABEL.findall(match.group(2) or ""))
        found.append((match.group(1), labels, float(match.group(3))))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        value
        for sample, found, value in samples(text)
        if sample == name and all(found.get(k) == v for k, v in labels.items())
    )


def families(text: str) -> dict[str, str]:
    """Metric family name → type, from the `# TYPE` lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("metrics-server")
    env = {"ML_SERVICE_WORKERS": str(WORKERS), "ML_SERVICE_LOG_LEVEL": "warning"}
    with running_server(model_dir, tmp, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(server: Server) -> str:
    """Send REQUESTS predictions over many connections, then read `/metrics` once."""

    def send(count: int) -> list[int]:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            return [
                client.post(
                    "/predict", content=SAMPLE, headers={"content-type": "application/json"}
                ).status_code
                for _ in range(count)
            ]

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for batch in pool.map(send, [REQUESTS // CLIENTS] * CLIENTS) for s in batch]
    assert statuses == [200] * REQUESTS
    # Each worker writes its counts at least every FLUSH_SECONDS; wait for all of them, then
    # check nothing more arrives (no double counting).
    deadline = time.monotonic() + 10 * FLUSH_SECONDS + 5
    while True:
        text = httpx.get(server.url + "/metrics", timeout=10).text
        if total(text, "ml_service_http_requests_total", route="/predict") >= REQUESTS:
            break
        assert time.monotonic() < deadline, "the workers' counts never all arrived"
        time.sleep(FLUSH_SECONDS)
    time.sleep(3 * FLUSH_SECONDS)
    return httpx.get(server.url + "/metrics", timeout=10).text


def test_request_counter_is_exact_across_workers(server: Server, traffic: str) -> None:
    assert total(traffic, "ml_service_http_requests_total", route="/predict") == REQUESTS
    assert (
        total(
            traffic,
            "ml_service_http_requests_total",
            route="/predict",
            dialect="original",
            method="POST",
            status="200",
        )
        == REQUESTS
    )
    assert total(traffic, "ml_service_http_request_duration_seconds_count", route="/predict") == (
        REQUESTS
    )
    assert total(traffic, "ml_service_prediction_rows_count", dialect="original") == REQUESTS
    assert total(traffic, "ml_service_prediction_rows_sum", dialect="original") == REQUESTS
    assert total(traffic, "ml_service_prediction_value_count") == REQUESTS
    # Every request predicted the same house: one bucket holds them all, the one below none.
    buckets = sorted(
        (float(labels["le"]), value)
        for name, labels, value in samples(traffic)
        if name == "ml_service_prediction_value_bucket"
    )
    first = next(i for i, (_, count) in enumerate(buckets) if count)
    assert buckets[first][1] == REQUESTS
    assert first > 0


def test_several_workers_answered(server: Server, traffic: str) -> None:
    counters = list(_metrics_dir(server).glob("counter_*.db"))
    assert len(counters) >= 2, f"only {len(counters)} worker(s) counted requests: {counters}"


def _metrics_dir(server: Server) -> Path:
    """The directory `running_server` gives the server (`ML_SERVICE_METRICS_DIR`)."""
    port = server.url.rsplit(":", 1)[1]
    return server.log.parent / f"metrics-{port}"


def test_model_info_in_flight_and_training_range(server: Server, traffic: str) -> None:
    model = httpx.get(server.url + "/v1/models/housing", timeout=10).json()
    info = [labels for name, labels, value in samples(traffic) if name == "ml_service_model_info"]
    assert info == [{"name": "housing", "version": model["version"]}]
    # The scrape itself is the only request in flight.
    assert total(traffic, "ml_service_http_requests_in_flight") == 1
    # The sample house is inside the training range: nothing counted, but every feature listed.
    outside = {
        labels["feature"]: value
        for name, labels, value in samples(traffic)
        if name == "ml_service_input_outside_training_range_total"
    }
    assert outside == dict.fromkeys(model_features(model), 0.0)


def model_features(model: dict[str, object]) -> list[str]:
    return [f["name"] for f in model["features"]]  # type: ignore[attr-defined]


def test_outside_training_range_counts_each_value(server: Server) -> None:
    """Counted once per value; the answering worker settles its rows within 0.2 s."""
    row = {"CHAS": 0, "RM": 9.5, "TAX": 296, "PTRATIO": 15.3, "B": 396.9, "LSTAT": 0.5}
    body = {"instances": [row, row, {**row, "RM": 6.0}]}
    name = "ml_service_input_outside_training_range_total"
    before = httpx.get(server.url + "/metrics", timeout=10).text
    response = httpx.post(server.url + "/v1/models/housing:predict", json=body, timeout=10)
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    while True:
        after = httpx.get(server.url + "/metrics", timeout=10).text
        delta = {
            f: total(after, name, feature=f) - total(before, name, feature=f) for f in FEATURES
        }
        if delta != {"RM": 0, "LSTAT": 0, "TAX": 0} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert delta == {"RM": 2, "LSTAT": 3, "TAX": 0}


def test_docs_list_every_exposed_metric(server: Server, traffic: str) -> None:
    exposed = families(traffic)
    assert exposed, "no metric families exposed"
    ours = {name for name in exposed if name.startswith("ml_service_")}
    assert ours == set(exposed), f"metrics without the ml_service_ prefix: {set(exposed) - ours}"
    doc = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`(ml_service_[a-z0-9_]+)`", doc))
    for name, kind in exposed.items():
        # A counter family may be named with or without its samples' `_total` suffix.
        shown = f"{name.removesuffix('_total')}_total" if kind == "counter" else name
        assert shown in documented, f"{shown} is exposed but not documented in {DOC.name}"
    for name in documented - CLASSIFIER_ONLY:
        base = name.removesuffix("_total")
        assert base in exposed or name in exposed, f"{name} is documented but not exposed"


def test_dashboard_queries_only_exposed_metrics(traffic: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"]
    assert dashboard["uid"]
    exposed = set()
    for name, kind in families(traffic).items():
        exposed.add(name)
        if kind == "counter":
            exposed.add(f"{name.removesuffix('_total')}_total")
        if kind == "histogram":
            exposed.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    panels = dashboard["panels"]
    assert len(panels) >= 8
    queried: set[str] = set()
    for panel in panels:
        assert panel.get("title"), panel
        for target in panel.get("targets", []):
            names = set(re.findall(r"\bml_service_[a-z0-9_]+", target["expr"]))
            assert names, f"panel {panel['title']!r} queries no ml_service metric"
            assert names <= exposed, f"panel {panel['title']!r} queries unknown {names - exposed}"
            queried |= names
    for family in ("ml_service_http_requests_total", "ml_service_drift_psi"):
        assert family in queried
