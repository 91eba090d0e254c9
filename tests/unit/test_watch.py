"""`ml-service watch` against a real HTTP server on 127.0.0.1 whose `/metrics` changes between
scrapes. The metrics text is written by prometheus_client from metrics declared as the service
declares them (plus labels the service may add), so the parser sees what production serves.
The watch runs on a fake clock that advances only when the watch waits: no test sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ml_service import cli
from ml_service.errors import WatchError
from ml_service.observability.metrics import LATENCY_BUCKETS
from ml_service.watch import Limits, Refused, Scrape, parse, quantile, watch

KEY = "k-7f3a9c1e5b"


class Traffic:
    """Cumulative metrics of a service, as prometheus_client renders them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ml_service_http_requests",
            "HTTP requests answered.",
            ["route", "dialect", "method", "status", "model"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ml_service_http_request_duration_seconds",
            "Request time.",
            ["route", "dialect", "status", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def add(
        self,
        n: int,
        status: int = 200,
        seconds: float = 0.004,
        dialect: str = "original",
        model: str = "housing",
    ) -> Traffic:
        route = "/predict" if dialect else "/health/ready"
        method = "POST" if dialect else "GET"
        for _ in range(n):
            self.requests.labels(route, dialect, method, str(status), model).inc()
            self.latency.labels(route, dialect, str(status), model).observe(seconds)
        return self

    def text(self) -> str:
        return generate_latest(self.registry).decode()


@dataclass
class Service:
    """What the test server answers: one entry per scrape (the last one repeats)."""

    pages: list[str | int] = field(default_factory=list)
    require_key: bool = False
    seen: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    @property
    def scrapes(self) -> int:
        return len(self.seen)


@pytest.fixture
def service() -> Iterator[Service]:
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/metrics":
                self.send_error(404)
                return
            if state.require_key and self.headers.get("authorization") != f"Bearer {KEY}":
                self.send_error(401)
                return
            page = state.pages[min(len(state.seen), len(state.pages)) - 1]
            if isinstance(page, int):
                self.send_error(page)
                return
            body = page.encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain; version=0.0.4")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Clock:
    """Monotonic time that moves only when the watch sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


LIMITS = Limits(max_error_rate=0.01, max_p99_ms=250)


def run_watch(
    service: Service,
    limits: Limits = LIMITS,
    seconds: float = 60,
    interval: float = 10,
    api_key: str | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[object, Clock]:
    clock = Clock()
    verdict = watch(
        service.url,
        seconds,
        interval,
        limits,
        api_key=api_key,
        timeout=5,
        log=log or (lambda _: None),
        clock=clock,
        sleep=clock.sleep,
    )
    return verdict, clock


def growing(*steps: Callable[[Traffic], object]) -> list[str | int]:
    """Pages of one service whose traffic grows by each step in turn."""
    traffic = Traffic()
    pages: list[str | int] = []
    for step in steps:
        step(traffic)
        pages.append(traffic.text())
    return pages


def test_a_healthy_canary_passes_after_the_whole_window(service: Service) -> None:
    service.pages = growing(*[lambda t: t.add(400).add(1, status=500)] * 7)
    lines: list[str] = []
    verdict, clock = run_watch(service, log=lines.append)
    assert verdict.healthy, verdict
    assert verdict.requests == 6 * 401  # the first scrape is the baseline
    assert verdict.error_rate == pytest.approx(1 / 401)
    assert verdict.p99_ms is not None
    assert 2.5 < verdict.p99_ms <= 5
    assert service.scrapes == 7
    assert clock.sleeps == [10] * 6
    assert len(lines) == 7


def test_too_many_errors_fail_the_canary(service: Service) -> None:
    service.pages = growing(*[lambda t: t.add(90).add(10, status=503)] * 7)
    verdict, _ = run_watch(service)
    assert not verdict.healthy
    assert "5xx share 10.00%" in verdict.reason
    assert "1.00%" in verdict.reason


def test_slow_answers_fail_the_canary(service: Service) -> None:
    service.pages = growing(*[lambda t: t.add(95).add(5, seconds=0.8)] * 4)
    verdict, _ = run_watch(service, seconds=30)
    assert not verdict.healthy
    assert "p99 latency" in verdict.reason
    assert verdict.p99_ms is not None
    assert 500 < verdict.p99_ms <= 1000


def test_only_the_window_counts_not_what_came_before(service: Service) -> None:
    traffic = Traffic().add(500, status=500).add(50, seconds=4.0)
    service.pages = [traffic.text(), traffic.add(300).text()]
    verdict, _ = run_watch(service, seconds=10)
    assert verdict.healthy, verdict
    assert verdict.requests == 300
    assert verdict.error_rate == 0


def test_other_labels_are_summed_and_other_routes_ignored(service: Service) -> None:
    def step(t: Traffic) -> None:
        t.add(100, model="housing").add(100, model="homes")
        t.add(2, status=500, model="homes")
        t.add(50, status=503, dialect="")  # a failing probe is no prediction

    service.pages = growing(step, step)
    verdict, _ = run_watch(service, seconds=10)
    assert verdict.requests == 202
    assert verdict.error_rate == pytest.approx(2 / 202)
    assert verdict.healthy


def test_too_few_requests_cannot_pass(service: Service) -> None:
    service.pages = growing(*[lambda t: t.add(3)] * 7)
    verdict, _ = run_watch(service, Limits(0.01, 250, min_requests=100))
    assert not verdict.healthy
    assert "only 18 prediction requests" in verdict.reason


def test_with_a_minimum_a_breach_stops_the_watch_early(service: Service) -> None:
    service.pages = growing(*[lambda t: t.add(50, status=500)] * 7)
    verdict, clock = run_watch(service, Limits(0.01, 250, min_requests=40))
    assert not verdict.healthy
    assert service.scrapes == 2
    assert clock.sleeps == [10]


def test_without_a_minimum_the_window_runs_to_its_end(service: Service) -> None:
    service.pages = growing(*[lambda t: t.add(1, status=500).add(1)] * 7)
    verdict, _ = run_watch(service)
    assert not verdict.healthy
    assert service.scrapes == 7


def test_a_restart_during_the_watch_is_unhealthy(service: Service) -> None:
    service.pages = [Traffic().add(1000).text(), Traffic().add(10).text()]
    verdict, _ = run_watch(service, seconds=10)
    assert not verdict.healthy
    assert "restarted" in verdict.reason


def test_a_failed_scrape_is_skipped(service: Service) -> None:
    traffic = Traffic()
    service.pages = [traffic.add(10).text(), 502, traffic.add(200).text()]
    lines: list[str] = []
    verdict, _ = run_watch(service, seconds=20, log=lines.append)
    assert verdict.healthy
    assert verdict.requests == 200
    assert any("scrape failed" in line and "502" in line for line in lines)


def test_a_final_scrape_that_fails_leaves_the_window_before_it(service: Service) -> None:
    traffic = Traffic()
    service.pages = [traffic.add(10).text(), traffic.add(200).text(), 503]
    verdict, _ = run_watch(service, seconds=20)
    assert verdict.healthy
    assert verdict.requests == 200


def test_the_api_key_is_sent_as_a_bearer_token(service: Service) -> None:
    service.require_key = True
    service.pages = growing(*[lambda t: t.add(10)] * 2)
    verdict, _ = run_watch(service, seconds=10, api_key=KEY)
    assert verdict.healthy
    assert {s["authorization"] for s in service.seen} == {f"Bearer {KEY}"}


def test_a_refused_scrape_stops_at_once_with_a_hint(service: Service) -> None:
    service.require_key = True
    service.pages = growing(lambda t: t.add(10))
    with pytest.raises(Refused, match=r"401.*ML_SERVICE_API_KEY"):
        run_watch(service)
    assert service.scrapes == 1
    assert "authorization" not in service.seen[0]


def test_no_service_cannot_be_watched(service: Service) -> None:
    service.pages = [503]
    with pytest.raises(WatchError, match=r"fewer than two scrapes.*503"):
        run_watch(service, seconds=20)
    assert service.scrapes == 3


def test_text_that_is_not_metrics_is_refused() -> None:
    with pytest.raises(WatchError, match="Prometheus text format"):
        parse("ml_service_http_requests_total{route=\n")
    with pytest.raises(WatchError, match="no ml_service_http_requests_total"):
        parse("# HELP up x\n# TYPE up gauge\nup 1\n")
    assert parse("# TYPE ml_service_http_requests_total counter\n") == Scrape(0, 0, {})


def test_quantile_interpolates_as_prometheus_does() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.3)
    assert quantile(0.99, buckets) == pytest.approx(0.95)
    # Past the largest finite bound, the answer is that bound.
    assert quantile(0.99, {0.1: 10.0, float("inf"): 20.0}) == pytest.approx(0.1)
    assert quantile(0.99, {0.1: 0.0, float("inf"): 0.0}) is None
    assert quantile(0.99, {}) is None


@pytest.mark.parametrize(
    ("pages", "status", "verdict"),
    [
        (growing(lambda t: t.add(10), lambda t: t.add(100)), 0, "healthy: within the limits"),
        (growing(lambda t: t.add(10), lambda t: t.add(50, status=500)), 3, "unhealthy: 5xx"),
        ([404], 1, ""),
    ],
)
def test_the_command_exits_0_3_or_1(
    service: Service,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pages: list[str | int],
    status: int,
    verdict: str,
) -> None:
    monkeypatch.setenv("ML_SERVICE_API_KEY", KEY)
    service.require_key = True
    service.pages = pages
    argv = ["watch", "--url", service.url + "/", "--seconds", "0.05", "--interval", "0.05"]
    argv += ["--max-error-rate", "0.05", "--max-p99-ms", "100"]
    assert cli.main(argv) == status
    out, err = capsys.readouterr()
    assert out.startswith(verdict)
    assert "ml-service watch: watching" in err
    assert KEY not in out + err
    if status == 1:
        assert "ml-service watch: error:" in err


@pytest.mark.parametrize(
    "bad",
    [
        ["--seconds", "0"],
        ["--seconds", "inf"],
        ["--max-error-rate", "1.5"],
        ["--min-requests", "-1"],
        ["--interval", "soon"],
    ],
)
def test_bad_arguments_are_a_usage_error(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["watch", "--url", "http://127.0.0.1:9", "--seconds", "5"]
    argv += ["--max-error-rate", "0.01", "--max-p99-ms", "100", *bad]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert bad[0] in capsys.readouterr().err
