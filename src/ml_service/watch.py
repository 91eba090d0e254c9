"""`ml-service watch`: is a canary healthy? Its `/metrics`, read over a window of time.

The canary's prediction requests (those whose `dialect` label is set: probes and metric scrapes
do not dilute the figures) are counted from `ml_service_http_requests_total` and timed from the
`ml_service_http_request_duration_seconds` histogram, summed over every other label. The window
is the difference between the first and the latest scrape, so what the service answered before
the watch began does not count. With a minimum number of requests set, the watch stops early as
soon as a window of at least that many breaks a limit.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from ml_service import __version__
from ml_service.errors import WatchError

REQUESTS = "ml_service_http_requests_total"
LATENCY_BUCKET = "ml_service_http_request_duration_seconds_bucket"
QUANTILE = 0.99


@dataclass(frozen=True)
class Scrape:
    """Cumulative prediction-request figures at one moment."""

    requests: float
    errors: float
    buckets: Mapping[float, float] = field(default_factory=dict)

    def minus(self, first: Scrape) -> Scrape:
        """The figures of the window from `first` to this scrape."""
        buckets = {le: n - first.buckets.get(le, 0.0) for le, n in self.buckets.items()}
        return Scrape(self.requests - first.requests, self.errors - first.errors, buckets)


@dataclass(frozen=True)
class Limits:
    """What a healthy canary stays within."""

    max_error_rate: float
    max_p99_ms: float
    min_requests: int = 0


@dataclass(frozen=True)
class Verdict:
    """The outcome of a watch: healthy or not, why, and the window's figures."""

    healthy: bool
    reason: str
    requests: float
    error_rate: float
    p99_ms: float | None
    seconds: float


def parse(text: str) -> Scrape:
    """The prediction-request totals of one `/metrics` answer (Prometheus text format)."""
    # Imported here, not with the module: the `ml-service` command builds this subcommand's
    # parser in every process, `serve` too, and prometheus_client chooses its multi-process
    # mode once, when first imported, which must come after `serve` has set its directory.
    from prometheus_client.parser import text_string_to_metric_families

    requests = errors = 0.0
    buckets: dict[float, float] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise WatchError(f"the metrics are not in the Prometheus text format: {exc}") from exc
    seen = False
    for family in families:
        for sample in family.samples:
            if not sample.labels.get("dialect"):
                continue
            if sample.name == REQUESTS:
                seen = True
                requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif sample.name == LATENCY_BUCKET:
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    if not seen and REQUESTS not in text:
        raise WatchError(f"the metrics have no {REQUESTS}: is this an ml-service?")
    return Scrape(requests, errors, buckets)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated as Prometheus's
    `histogram_quantile` does (None for an empty histogram)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for index, upper in enumerate(bounds):
        count = buckets[upper]
        if count >= rank:
            if math.isinf(upper):
                return bounds[index - 1] if index else None
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return bounds[-1]


def _verdict(window: Scrape, seconds: float, healthy: bool, reason: str) -> Verdict:
    p99 = quantile(QUANTILE, window.buckets)
    rate = window.errors / window.requests if window.requests > 0 else 0.0
    return Verdict(
        healthy, reason, window.requests, rate, None if p99 is None else p99 * 1000, seconds
    )


def breach(window: Scrape, seconds: float, limits: Limits, needed: float) -> Verdict | None:
    """The unhealthy verdict on a window of at least `needed` requests that breaks a limit."""
    if window.requests < 0 or window.errors < 0:
        reason = "the counters went down: the service restarted during the watch"
        return _verdict(window, seconds, False, reason)
    if window.requests < needed:
        return None
    verdict = _verdict(window, seconds, True, "")
    if verdict.error_rate > limits.max_error_rate:
        reason = (
            f"5xx share {verdict.error_rate:.2%} is above the limit of {limits.max_error_rate:.2%}"
        )
        return _verdict(window, seconds, False, reason)
    if verdict.p99_ms is not None and verdict.p99_ms > limits.max_p99_ms:
        reason = f"p99 latency {verdict.p99_ms:.0f} ms is above {limits.max_p99_ms:g} ms"
        return _verdict(window, seconds, False, reason)
    return None


def judge(window: Scrape, seconds: float, limits: Limits) -> Verdict:
    """The verdict on a whole window."""
    broken = breach(window, seconds, limits, needed=1)
    if broken is not None:
        return broken
    if window.requests < limits.min_requests:
        reason = (
            f"only {window.requests:.0f} prediction requests; "
            f"at least {limits.min_requests} are needed to judge"
        )
        return _verdict(window, seconds, False, reason)
    return _verdict(window, seconds, True, "within the limits")


class Refused(WatchError):
    """The service refuses to show its metrics: no retry will change that."""


def scrape(url: str, api_key: str | None, timeout: float) -> Scrape:
    """Read and parse `url`/metrics once; WatchError when that cannot be done."""
    headers = {"user-agent": f"ml-service/{__version__}"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    endpoint = url.rstrip("/") + "/metrics"
    try:
        response = httpx.get(endpoint, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        raise WatchError(f"cannot reach {endpoint}: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code in (401, 403):
        hint = "" if api_key else " (set ML_SERVICE_API_KEY)"
        raise Refused(f"{endpoint} answered {response.status_code}: not allowed{hint}")
    if response.status_code != 200:
        raise WatchError(f"{endpoint} answered {response.status_code}")
    return parse(response.text)


def describe(verdict: Verdict) -> str:
    """One line for logs and job summaries."""
    p99 = "no latency samples" if verdict.p99_ms is None else f"p99 {verdict.p99_ms:.0f} ms"
    state = "healthy" if verdict.healthy else "unhealthy"
    return (
        f"{state}: {verdict.reason} ({verdict.requests:.0f} prediction requests in "
        f"{verdict.seconds:.0f} s, {verdict.error_rate:.2%} 5xx, {p99})"
    )


def watch(
    url: str,
    seconds: float,
    interval: float,
    limits: Limits,
    api_key: str | None = None,
    timeout: float = 10.0,
    log: Callable[[str], None] = lambda _: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Scrape `url`/metrics every `interval` seconds for `seconds`; judge the window.

    A scrape that fails is logged and skipped; the watch needs a first and a later scrape.
    """
    start = clock()
    deadline = start + seconds
    first: Scrape | None = None
    window: tuple[Scrape, float] | None = None
    failure = ""
    while True:
        now = clock()
        final = now >= deadline
        try:
            current = scrape(url, api_key, timeout)
        except Refused:
            raise
        except WatchError as exc:
            failure = exc.message
            log(f"{now - start:.0f}s: scrape failed: {exc.message}")
        else:
            if first is None:
                first = current
                log(f"{now - start:.0f}s: first scrape: {current.requests:.0f} requests so far")
            else:
                window = (current.minus(first), now - start)
                log(f"{now - start:.0f}s: {_figures(window[0])}")
                if final:
                    return judge(*window, limits)
                # Early, only once the window holds the minimum asked for.
                early = breach(*window, limits, needed=limits.min_requests or math.inf)
                if early is not None:
                    return early
        if final:
            break
        sleep(max(0.0, min(interval, deadline - clock())))
    if window is None:
        last = f"; last error: {failure}" if failure else ""
        raise WatchError(f"fewer than two scrapes of {url.rstrip('/')}/metrics succeeded{last}")
    return judge(*window, limits)


def _figures(window: Scrape) -> str:
    rate = window.errors / window.requests if window.requests > 0 else 0.0
    p99 = quantile(QUANTILE, window.buckets)
    latency = "-" if p99 is None else f"{p99 * 1000:.0f} ms"
    return f"{window.requests:.0f} prediction requests, {rate:.2%} 5xx, p99 {latency}"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `watch` subcommand's arguments."""
    parser = commands.add_parser(
        "watch",
        help="watch a canary's /metrics; exit 0 healthy, 3 unhealthy, 1 could not watch",
    )
    parser.add_argument("--url", required=True, help="the service (its /metrics is read)")
    parser.add_argument("--seconds", type=_positive, required=True, help="length of the watch")
    parser.add_argument("--interval", type=_positive, default=10.0, help="seconds between scrapes")
    parser.add_argument(
        "--max-error-rate", type=_share, required=True, help="largest 5xx share, 0 to 1"
    )
    parser.add_argument("--max-p99-ms", type=_positive, required=True, help="largest p99 latency")
    parser.add_argument(
        "--min-requests",
        type=_count,
        default=0,
        help="prediction requests needed to judge (and to stop early on a breach)",
    )
    parser.add_argument("--timeout", type=_positive, default=10.0, help="seconds per scrape")


def run(args: argparse.Namespace) -> int:
    """Run the watch; print the verdict on stdout (progress on stderr)."""

    def log(line: str) -> None:
        print(f"ml-service watch: {line}", file=sys.stderr, flush=True)

    limits = Limits(args.max_error_rate, args.max_p99_ms, args.min_requests)
    log(
        f"watching {args.url} for {args.seconds:g}s: at most {limits.max_error_rate:.2%} 5xx, "
        f"p99 at most {limits.max_p99_ms:g} ms, at least {limits.min_requests} requests"
    )
    api_key = os.environ.get("ML_SERVICE_API_KEY") or None
    verdict = watch(args.url, args.seconds, args.interval, limits, api_key, args.timeout, log=log)
    print(describe(verdict), flush=True)
    return 0 if verdict.healthy else 3
