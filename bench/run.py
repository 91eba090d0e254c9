"""`make bench`: ml-service, the floor and the usual FastAPI approach, side by side, one run.

Every server runs one worker under gunicorn with ml-service's uvicorn worker class (uvloop,
httptools), pinned to one core; wrk runs pinned to another, so noise on this machine cancels
in the ratios. For each server and request kind, wrk drives 1, 8 and 64 connections. Also
measured: the model alone in-process (rows/s on a 10,000-row array, µs for one row, and per
batch size, which decides whether micro-batching could pay), cold start (process start to
`/health/ready` answering 200) and resident memory per worker. The batch section
(`bench/batch.py`; `--only batch` runs it alone) measures `ml-service score` on 1,000,000 rows
against the model alone, its peak memory, and Spark at `local[1]` and `local[2]`.

Writes `bench/results/latest.json` and `latest.md`; exits 1 if any request failed or answered
wrongly (and, with `--strict`, if a target is missed). Server logs go to `--logs`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WORKER_CLASS = "ml_service.server.worker.Worker"
BATCH_ROWS = 10_000
BATCH_SECONDS = 5.0
BATCH_ROUNDS = 3
START_DEADLINE = 60.0
STOP_DEADLINE = 20.0


@dataclass
class Run:
    """One wrk run: a server, a request kind, a connection count, and what wrk measured."""

    server: str
    request: str
    rows: int
    connections: int
    requests_per_s: float
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    ratio_to_floor: float | None = None
    rounds_per_s: list[float] = field(default_factory=list)


@dataclass
class Results:
    """Everything one `make bench` run measured."""

    started: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    comparison: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def target(self, name: str, value: float | None, limit: float, above: bool) -> None:
        """Record a target of docs/performance.md: met when `value` is on the right of `limit`."""
        met = value is not None and (value >= limit if above else value <= limit)
        self.targets.append({"target": name, "value": value, "limit": limit, "met": met})


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def post(
    url: str, body: bytes, timeout: float = 30.0, headers: tuple[tuple[str, str], ...] = ()
) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
        url, data=body, method="POST", headers={"content-type": "application/json", **dict(headers)}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]
    except OSError as exc:
        return 0, str(exc)


class Server:
    """A server process (gunicorn master and its worker) with its log in a file."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], ready_url: str, log: Path
    ) -> None:
        self.name, self.ready_url = name, ready_url
        self.log = log.open("ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(  # one process group: stop reaches the worker too
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, deadline: float = START_DEADLINE) -> float:
        """Seconds from process start until the ready URL answered 200."""
        end = self.started + deadline
        while time.perf_counter() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            if get(self.ready_url, timeout=0.5)[0] == 200:
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} not ready within {deadline:.0f} s")

    def worker_rss_mb(self) -> float | None:
        """Resident memory of the (one) worker process, in MB (MiB)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_DEADLINE)
        self.log.close()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# --- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A request kind: the path, the body, and how many rows it carries."""

    name: str
    path: str
    body: bytes
    rows: int
    headers: tuple[tuple[str, str], ...] = ()


def request_kinds(schema: Any, model: str) -> tuple[dict[str, Kind], np.ndarray, np.ndarray]:
    """Single-row requests in each dialect and 10,000-row batches; also their rows."""
    names = list(schema.names)
    example = schema.examples[0] if schema.examples else None
    one = np.array(
        [
            [
                (example or {}).get(n, f.train_min or 0.0)
                for n, f in zip(names, schema.features, strict=True)
            ]
        ]
    )
    rng = np.random.default_rng(0)
    columns = []
    for feature in schema.features:
        if feature.allowed is not None:
            columns.append(rng.choice(np.asarray(feature.allowed), BATCH_ROWS))
        else:
            low = feature.train_min if feature.train_min is not None else 0.0
            high = feature.train_max if feature.train_max is not None else low + 1.0
            columns.append(np.round(rng.uniform(low, high, BATCH_ROWS), 3))
    batch = np.column_stack(columns)

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def v2(rows: np.ndarray) -> bytes:
        return dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": list(rows.shape),
                        "datatype": "FP64",
                        "data": rows.ravel().tolist(),
                    }
                ]
            }
        )

    row = dict(zip(names, one[0].tolist(), strict=True))
    kinds = [
        Kind("original", "/predict", dumps({n: {"0": row[n]} for n in names}), 1),
        Kind("v1", f"/v1/models/{model}:predict", dumps({"instances": [row]}), 1),
        Kind("v2", f"/v2/models/{model}/infer", v2(one), 1),
        Kind(
            "original batch",
            "/predict",
            dumps({n: batch[:, j].tolist() for j, n in enumerate(names)}),
            BATCH_ROWS,
        ),
        Kind("v2 batch", f"/v2/models/{model}/infer", v2(batch), BATCH_ROWS),
    ]
    kinds.append(
        Kind(
            "original keyed",
            "/predict",
            kinds[0].body,
            1,
            (("Authorization", f"Bearer {API_KEY}"),),
        )
    )
    return {k.name: k for k in kinds}, one, batch


def predictions_of(answer: Any) -> list[float]:
    if isinstance(answer, dict):
        if "prediction" in answer:
            return list(answer["prediction"])
        if "predictions" in answer:
            return list(answer["predictions"])
        if "outputs" in answer:
            return list(answer["outputs"][0]["data"])
    raise ValueError(f"unexpected answer {str(answer)[:200]}")


# --- wrk ----------------------------------------------------------------------------------------


def wrk(
    url: str,
    body_file: Path,
    connections: int,
    seconds: float,
    cpu: int | None,
    headers: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    command = pinned(
        cpu,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(BENCH / "wrk.lua"),
            url,
        ],
    )
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in headers),
    }
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            summary: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return summary
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")


def combine(server: str, kind: Kind, connections: int, summaries: list[dict[str, Any]]) -> Run:
    """One table row from one or more rounds: the median of each figure, errors summed."""
    rates = [s["requests"] / (s["duration_us"] / 1e6) for s in summaries]
    rate = statistics.median(rates)
    errors = sum(
        s["connect"] + s["read"] + s["write"] + s["status"] + s["timeout"] for s in summaries
    )
    return Run(
        server,
        kind.name,
        kind.rows,
        connections,
        round(rate, 1),
        round(rate * kind.rows, 1),
        round(statistics.median(s["p50_us"] for s in summaries) / 1000, 3),
        round(statistics.median(s["p99_us"] for s in summaries) / 1000, 3),
        errors,
        sum(s["requests"] for s in summaries),
        rounds_per_s=[round(r, 1) for r in rates],
    )


# --- in-process ---------------------------------------------------------------------------------


def best_seconds(call: Any, number: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def values(prediction: Any) -> np.ndarray:
    """A regressor's predicted values (a `Prediction`, or the array older trees return)."""
    found = getattr(prediction, "values", prediction)
    return np.asarray(found)


def model_alone(model_dir: Path, one: np.ndarray, batch: np.ndarray) -> dict[str, Any]:
    """The ONNX predictor (and the scikit-learn pipeline, when installed) without HTTP."""
    from ml_service.model.artifact import load_serving
    from ml_service.predictor import Predictor

    predictor = Predictor(load_serving(model_dir))
    out: dict[str, Any] = {
        "onnx_rows_per_s_10k": round(
            BATCH_ROWS / best_seconds(lambda: predictor.predict(batch), 5)
        ),
        "onnx_us_one_row": round(best_seconds(lambda: predictor.predict(one), 2000) * 1e6, 2),
        "onnx_us_per_row_by_batch": {
            str(n): round(best_seconds(lambda n=n: predictor.predict(batch[:n]), 500) * 1e6 / n, 2)
            for n in (1, 8, 64)
        },
    }
    try:
        from ml_service.model.artifact import load_pipeline

        pipeline = load_pipeline(model_dir)
    except ImportError:
        return out
    out["sklearn_us_one_row"] = round(best_seconds(lambda: pipeline.predict(one), 200) * 1e6, 1)
    out["sklearn_rows_per_s_10k"] = round(
        BATCH_ROWS / best_seconds(lambda: pipeline.predict(batch), 3)
    )
    out["max_abs_diff_onnx_vs_sklearn_10k"] = float(
        np.max(np.abs(values(predictor.predict(batch)) - pipeline.predict(batch)))
    )
    return out


# --- the run ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {"python": platform.python_version()}
    from importlib.metadata import PackageNotFoundError, version

    for package in (
        "uvicorn",
        "gunicorn",
        "uvloop",
        "httptools",
        "onnxruntime",
        "orjson",
        "fastapi",
        "scikit-learn",
    ):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    versions["wrk"] = (wrk_version.stdout + wrk_version.stderr).split("Copyright")[0].strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "versions": versions,
    }


def pick_cpus() -> tuple[int | None, int | None]:
    """(server core, load generator core), or no pinning with fewer than two cores or taskset."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or shutil.which("taskset") is None:
        return None, None
    return cores[0], cores[1]


def gunicorn_command(bin_dir: Path, app: str, port: int) -> list[str]:
    return [
        str(bin_dir / "gunicorn"),
        "--workers",
        "1",
        "--worker-class",
        WORKER_CLASS,
        "--bind",
        f"127.0.0.1:{port}",
        "--keep-alive",
        "5",
        "--pythonpath",
        str(BENCH),
        "--error-logfile",
        "-",
        app,
    ]


def service_env(
    args: argparse.Namespace, port: int, metrics: Path, src: Path | None = None
) -> dict[str, str]:
    """The environment of an ml-service under test (served from `src`, else `--src`)."""
    src = src or args.src
    env = {
        **os.environ,
        "PORT": str(port),
        "ML_SERVICE_HOST": "127.0.0.1",
        "ML_SERVICE_WORKERS": "1",
        "ML_SERVICE_MODEL_DIR": str(args.model_dir),
        "ML_SERVICE_METRICS_DIR": str(metrics),
        "ML_SERVICE_LOG_LEVEL": args.log_level,
    }
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def check_answer(
    server: str, kind: Kind, base: str, expected: np.ndarray, results: Results
) -> None:
    status, answer = post(base + kind.path, kind.body, headers=kind.headers)
    if status != 200:
        results.failures.append(f"{server} {kind.name}: status {status}: {answer!r}"[:400])
        return
    got = np.asarray(predictions_of(answer), dtype=np.float64)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=1e-4):
        results.failures.append(f"{server} {kind.name}: predictions differ from the model's")


def base_url(server: Server) -> str:
    scheme, _, host = server.ready_url.split("/", 3)[:3]
    return f"{scheme}//{host}"


def report(run: Run) -> None:
    print(
        f"  {run.server:10s} {run.request:15s} c={run.connections:<3d} "
        f"{run.requests_per_s:9.0f} req/s  p50 {run.p50_ms:7.3f} ms  "
        f"p99 {run.p99_ms:7.3f} ms  errors {run.errors}",
        flush=True,
    )


def ratio(run: Run, base: Run) -> float | None:
    """`run`'s requests/s over `base`'s: the median of the ratios of runs made in the same round
    when both have the same rounds, else the ratio of the medians."""
    pairs = list(zip(run.rounds_per_s, base.rounds_per_s, strict=False))
    if len(run.rounds_per_s) == len(base.rounds_per_s) and all(b > 0 for _, b in pairs):
        return statistics.median(a / b for a, b in pairs) if pairs else None
    return run.requests_per_s / base.requests_per_s if base.requests_per_s else None


def evaluate(results: Results) -> None:
    """Ratios to the floor, and each target of docs/performance.md met or not."""
    floor = {r.connections: r for r in results.runs if r.server == "floor"}
    for run in results.runs:
        if run.connections in floor:
            share = ratio(run, floor[run.connections])
            run.ratio_to_floor = round(share, 3) if share is not None else None

    def find(server: str, request: str, connections: int) -> Run | None:
        return next(
            (
                r
                for r in results.runs
                if (r.server, r.request, r.connections) == (server, request, connections)
            ),
            None,
        )

    target = results.target
    predict64 = find("ml-service", "original", 64)
    target(
        "single-row /predict at 64 connections, share of the floor",
        predict64.ratio_to_floor if predict64 else None,
        0.25,
        above=True,
    )
    for dialect in ("v1", "v2"):
        other = find("ml-service", dialect, 64)
        share = ratio(other, predict64) if other and predict64 else None
        target(
            f"single-row {dialect} at 64 connections, share of /predict",
            round(share, 3) if share is not None else None,
            0.8,
            above=True,
        )
    for dialect in ("original", "v1", "v2"):
        run = find("ml-service", dialect, 8)
        target(
            f"p99 ms at 8 connections, single-row {dialect}",
            run.p99_ms if run else None,
            3.0,
            above=False,
        )
    model_rate = results.model.get("onnx_rows_per_s_10k")
    for request in ("original batch", "v2 batch"):
        run = find("ml-service", request, 1)
        share = run.rows_per_s / model_rate if run and model_rate else None
        target(
            f"{request} (10,000 rows) end to end, share of the model's rows/s alone",
            round(share, 3) if share is not None else None,
            0.5,
            above=True,
        )
    for run in results.runs:
        base = (
            find("baseline", run.request, run.connections) if run.server == "ml-service" else None
        )
        share = ratio(run, base) if base else None
        if share is not None:
            results.comparison.append(
                {"request": run.request, "connections": run.connections, "ratio": round(share, 3)}
            )
    keyed = find("keys", "original keyed", 64)
    share = ratio(keyed, predict64) if keyed and predict64 else None
    target(
        "single-row /predict at 64 connections with API keys on, share of keys off",
        round(share, 3) if share is not None else None,
        0.9,
        above=True,
    )
    numeric, text = find("repository", "v1", 64), find("repository", "text", 64)
    share = ratio(text, numeric) if text and numeric else None
    target(
        "single-row request with text columns, share of a numeric one (same server, V1, 64)",
        round(share, 3) if share is not None else None,
        round(1 / 1.5, 3),
        above=True,
    )
    target(
        f"worker memory after {RELOADS} reloads, share of after the first",
        results.service.get("rss_reload_ratio"),
        1.1,
        above=False,
    )
    target("cold start to ready, s", results.service.get("cold_start_s"), 2.0, above=False)
    target("resident memory per worker, MB", results.service.get("worker_rss_mb"), 150, above=False)


def evaluate_batch(results: Results) -> None:
    """The batch section's targets: `ml-service score` near the model's own rows/s, flat memory."""
    figures = results.batch
    for kind in ("csv", "parquet"):
        results.target(
            f"ml-service score on 1,000,000 {kind} rows, share of the model's rows/s",
            figures.get(f"score_{kind}_share_of_model"),
            0.7,
            above=True,
        )
    results.target(
        "ml-service score peak memory, 1,000,000 rows over 10,000 rows",
        figures.get("score_peak_rss_ratio_1m_to_10k"),
        1.5,
        above=False,
    )


def markdown(results: Results) -> str:
    lines = [
        f"# ml-service benchmark ({results.started})",
        "",
        f"Machine: {results.machine['cpu']}, {results.machine['cores']} cores, load average "
        f"at start {', '.join(f'{x:.2f}' for x in results.machine['load_average'])}. "
        f"Server pinned to core {results.settings['server_cpu']}, wrk to core "
        f"{results.settings['client_cpu']}; one worker per server; "
        f"every figure is the median of rounds alternating the servers and request kinds "
        f"(single-row: {results.settings['rounds']} rounds of {results.settings['duration']} s "
        f"runs; 10,000-row batches: {results.settings['batch_rounds']} rounds of "
        f"{results.settings['batch_duration']} s runs); a ratio is the median of each round's "
        "ratio. Every server: gunicorn + uvicorn worker (uvloop, httptools).",
        "",
        "| server | request | rows | conns | requests/s | rows/s | p50 ms | p99 ms | errors "
        "| ratio to floor |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {"floor": 0, "ml-service": 1, "keys": 2, "repository": 3, "baseline": 4, "fastapi": 5}
    for r in sorted(results.runs, key=lambda r: (order.get(r.server, 3), r.rows, r.request)):
        ratio = f"{r.ratio_to_floor:.3f}" if r.ratio_to_floor is not None else ""
        lines.append(
            f"| {r.server} | {r.request} | {r.rows} | {r.connections} | {r.requests_per_s:,.0f} "
            f"| {r.rows_per_s:,.0f} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.errors} | {ratio} |"
        )
    lines += ["", "| measured in-process / at start | value |", "| --- | ---: |"]
    for key, value in {**results.model, **results.service}.items():
        lines.append(f"| {key} | {value} |")
    if results.batch:
        lines += ["", "| batch scoring (`ml-service score`, Spark) | value |", "| --- | ---: |"]
        for key, value in results.batch.items():
            lines.append(f"| {key} | {value} |")
    if results.comparison:
        lines += [
            "",
            "| ml-service / baseline | conns | requests/s ratio |",
            "| --- | ---: | ---: |",
        ]
        for c in results.comparison:
            lines.append(f"| {c['request']} | {c['connections']} | {c['ratio']:.3f} |")
    lines += ["", "| target | value | limit | met |", "| --- | ---: | ---: | --- |"]
    for t in results.targets:
        lines.append(
            f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else '**no**'} |"
        )
    if results.failures:
        lines += ["", "Failures:", *(f"- {f}" for f in results.failures)]
    versions = ", ".join(f"{k} {v}" for k, v in results.machine["versions"].items())
    lines += ["", f"Versions: {versions}.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "housing")
    parser.add_argument(
        "--bin",
        type=Path,
        default=Path(sys.executable).parent,
        help="directory holding ml-service and gunicorn (default: this venv)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--name", default="latest", help="results file stem")
    parser.add_argument("--logs", type=Path, default=ROOT / "reports" / "bench")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="runs per server, request kind and connection count, alternating (median kept)",
    )
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 8, 64]
    )
    parser.add_argument(
        "--servers",
        default="floor,ml-service,keys,repository,fastapi",
        help="comma-separated: floor, ml-service, keys (ml-service with API keys on), "
        "repository (the default model beside a model with text columns; live reloads), "
        "fastapi",
    )
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--log-level", default="info", help="ml-service's ML_SERVICE_LOG_LEVEL")
    parser.add_argument("--src", type=Path, help="serve ml_service from this source tree instead")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also serve ml_service from this source tree (say, the last release) in the same "
        "rounds, as the server `baseline`: before and after in one run",
    )
    parser.add_argument(
        "--only",
        choices=("all", "servers", "batch"),
        default="all",
        help="run only the servers (wrk, the model alone, cold starts) or only the batch "
        "section (`ml-service score` on 1,000,000 rows, its memory, Spark scaling)",
    )
    parser.add_argument("--no-spark", action="store_true", help="batch section without Spark")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


API_KEY = "bench-api-key-0123456789abcdef"
TEXT_DATA = ROOT / "data" / "examples" / "homes.csv"
RELOADS = 20


@contextlib.contextmanager
def model_repository(args: argparse.Namespace, tmp: Path, kinds: dict[str, Kind]) -> Iterator[Path]:
    """A repository with the default model and one trained from a CSV with text columns and
    blank cells (data/examples/homes.csv); adds its single-row V1 request as kind `text`."""
    repository = tmp / "repository"
    add_version(args.model_dir, repository, "v0", 0)
    print("bench: training a model with text columns for the repository", flush=True)
    trained = subprocess.run(
        [str(args.bin / "ml-service"), "train", "--data", str(TEXT_DATA), "--target", "price",
         "--name", "homes", "--repository", str(repository)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    path = Path(json.loads(trained.stdout.splitlines()[-1])["path"])
    schema = json.loads((path / "schema.json").read_text())
    names = [f["name"] for f in schema["features"]]
    example = {n: schema["examples"][0].get(n) for n in names}
    body = json.dumps({"instances": [example]}, separators=(",", ":")).encode()
    kinds["text"] = Kind("text", "/v1/models/homes:predict", body, 1)
    yield repository


def add_version(source: Path, repository: Path, version: str, number: int) -> None:
    """The artifact at `source` as version `version` of `housing` (its manifest rewritten)."""
    staging = repository / "housing" / f".{version}"
    shutil.copytree(source, staging)
    manifest = json.loads((staging / "manifest.json").read_text())
    manifest.update(version=version, created_at=f"2030-01-01T{number // 3600:02d}:"
                    f"{number // 60 % 60:02d}:{number % 60:02d}+00:00")  # fmt: skip
    (staging / "manifest.json").write_text(json.dumps(manifest))
    staging.rename(repository / "housing" / version)


def reloads(server: Server, repository: Path, model_dir: Path, results: Results) -> None:
    """RELOADS live loads of new versions of the default model; the worker's memory after the
    first and after the last (a reload must not leak)."""
    url = base_url(server) + "/v2/repository/models/housing/load"
    admin = (("Authorization", f"Bearer {API_KEY}"),)
    rss: list[float] = []
    started = time.perf_counter()
    for number in range(1, RELOADS + 1):
        add_version(model_dir, repository, f"v{number}", number)
        status, answer = post(url, b"", headers=admin)
        if status != 200:
            results.failures.append(f"reload {number}: status {status}: {answer!r}"[:300])
            return
        # Drop the version before last, as a release would: memory must come back too.
        if number > 1:
            shutil.rmtree(repository / "housing" / f"v{number - 1}")
        found = server.worker_rss_mb()
        if found is not None:
            rss.append(found)
    seconds = time.perf_counter() - started
    results.service["reload_s_median"] = round(seconds / RELOADS, 3)
    if len(rss) == RELOADS:
        results.service["rss_after_first_reload_mb"] = round(rss[0], 1)
        results.service["rss_after_last_reload_mb"] = round(rss[-1], 1)
        results.service["rss_reload_ratio"] = round(rss[-1] / rss[0], 3)


def cold_starts(args: argparse.Namespace, command: list[str], tmp: Path, results: Results) -> None:
    """Process start to `/health/ready` answering 200, `--cold-starts` times (median kept)."""
    starts = []
    for _ in range(args.cold_starts):
        port = free_port()
        env = service_env(args, port, tmp / f"metrics-{port}")
        probe = Server(
            "ml-service", command, env, f"http://127.0.0.1:{port}/health/ready",
            args.logs / "ml-service.log",
        )  # fmt: skip
        try:
            starts.append(probe.wait_ready())
        finally:
            probe.stop()
    if starts:
        results.service["cold_start_s"] = round(statistics.median(starts), 3)
        results.service["cold_start_all_s"] = [round(s, 3) for s in starts]


def driven_runs(
    args: argparse.Namespace,
    plan: list[tuple[Server, list[str]]],
    kinds: dict[str, Kind],
    files: dict[str, Path],
    client_cpu: int | None,
    results: Results,
    batches: bool = False,
) -> None:
    """Every server's request kinds in `plan` at each connection count, in alternating rounds,
    so each round's ratios compare runs made seconds apart.

    Batch runs take their length and round count from the settings' `batch_duration` and
    `batch_rounds`."""
    prefix = "batch_" if batches else ""
    seconds = results.settings[prefix + "duration"]
    rounds = results.settings[prefix + "rounds"]
    for connections in args.connections:
        summaries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(rounds):
            for server, names in plan:
                for name in names:
                    kind = kinds[name]
                    url = base_url(server) + kind.path
                    summary = wrk(url, files[name], connections, seconds, client_cpu, kind.headers)
                    summaries.setdefault((server.name, name), []).append(summary)
        for (server_name, name), runs in summaries.items():
            run = combine(server_name, kinds[name], connections, runs)
            results.runs.append(run)
            report(run)


def start_servers(
    args: argparse.Namespace,
    stack: contextlib.ExitStack,
    kinds: dict[str, Kind],
    server_cpu: int | None,
    tmp: Path,
) -> dict[str, tuple[Server, list[str]]]:
    """Every server `--servers` names (each with the request kinds it is driven with), all
    pinned to the server core and stopped when `stack` closes."""
    wanted = args.servers.split(",")
    service_command = pinned(server_cpu, [str(args.bin / "ml-service"), "serve"])
    started: dict[str, tuple[Server, list[str]]] = {}

    def start(name: str, command: list[str], env: dict[str, str], port: int, ready: str,
              names: list[str]) -> None:  # fmt: skip
        url = f"http://127.0.0.1:{port}{ready}"
        server = Server(name, command, env, url, args.logs / f"{name}.log")
        started[name] = (stack.enter_context(running(server)), names)

    def service(name: str, names: list[str], src: Path | None = None, **extra: str) -> None:
        port = free_port()
        env = {**service_env(args, port, tmp / f"metrics-{name}", src), **extra}
        if "ML_SERVICE_MODEL_REPOSITORY" in extra:
            del env["ML_SERVICE_MODEL_DIR"]
        start(name, service_command, env, port, "/health/ready", names)

    if "floor" in wanted:
        port = free_port()
        command = pinned(server_cpu, gunicorn_command(args.bin, "floor:app", port))
        start("floor", command, dict(os.environ), port, "/", ["original"])
    if "ml-service" in wanted:
        service("ml-service", ["original", "v1", "v2"])
    if "keys" in wanted:
        service("keys", ["original keyed"], ML_SERVICE_API_KEYS=API_KEY)
    if "repository" in wanted:
        repository = stack.enter_context(model_repository(args, tmp, kinds))
        service(
            "repository",
            ["v1", "text"],
            ML_SERVICE_MODEL_REPOSITORY=str(repository),
            ML_SERVICE_DEFAULT_MODEL="housing",
            ML_SERVICE_ADMIN_TOKEN=API_KEY,
        )
    if args.baseline_src:
        service("baseline", ["original", "v1", "v2"], args.baseline_src)
    if "fastapi" in wanted:
        port = free_port()
        env = {**os.environ, "ML_SERVICE_MODEL_DIR": str(args.model_dir)}
        command = pinned(server_cpu, gunicorn_command(args.bin, "reference_app:app", port))
        start("fastapi", command, env, port, "/health/ready", ["original"])
    return started


def run_servers(
    args: argparse.Namespace,
    kinds: dict[str, Kind],
    expected: dict[str, np.ndarray],
    cpus: tuple[int | None, int | None],
    tmp: Path,
    results: Results,
) -> None:
    """Start every server (all on the server core, idle unless driven), then drive them in
    turn connection count by connection count, so a change in background load hits the floor
    and the service alike."""
    server_cpu, client_cpu = cpus
    if "ml-service" in args.servers.split(","):
        print("bench: ml-service cold starts", flush=True)
        command = pinned(server_cpu, [str(args.bin / "ml-service"), "serve"])
        cold_starts(args, command, tmp, results)
    with contextlib.ExitStack() as stack:
        started = start_servers(args, stack, kinds, server_cpu, tmp)
        files: dict[str, Path] = {}
        for name, kind in kinds.items():
            files[name] = tmp / f"{name.replace(' ', '-')}.json"
            files[name].write_bytes(kind.body)
        plan = list(started.values())
        for server, names in plan:
            url = base_url(server)
            if server.name != "floor":  # the floor answers a fixed body by design
                for name in names:
                    if name != "text":  # another model: its answer is checked for status only
                        check_answer(server.name, kinds[name], url, expected["one"], results)
            for name in names:
                kind = kinds[name]
                wrk(url + kind.path, files[name], 8, args.warmup, client_cpu, kind.headers)
        print("bench: single-row requests", flush=True)
        driven_runs(args, plan, kinds, files, client_cpu, results)
        if "repository" in started:
            print("bench: live reloads", flush=True)
            server = started["repository"][0]
            reloads(server, tmp / "repository", args.model_dir, results)
        if "ml-service" in started:
            service = started["ml-service"][0]
            rss = service.worker_rss_mb()
            results.service["worker_rss_mb"] = round(rss, 1) if rss is not None else None
            print("bench: 10,000-row batches", flush=True)
            batches = ["original batch", "v2 batch"]
            for name in batches:
                check_answer("ml-service", kinds[name], base_url(service), expected["batch"],
                             results)  # fmt: skip
            driven_runs(args, [(service, batches)], kinds, files, client_cpu, results, batches=True)
            # Up to 64 concurrent 10,000-row requests are parsed at once: the high-water mark.
            rss = service.worker_rss_mb()
            results.service["worker_rss_after_batches_mb"] = (
                round(rss, 1) if rss is not None else None
            )


def batch_section(args: argparse.Namespace, results: Results) -> None:
    """`ml-service score` and Spark on generated housing files (bench/batch.py)."""
    import batch

    print("bench: batch scoring (ml-service score on 1,000,000 rows)", flush=True)
    with tempfile.TemporaryDirectory(prefix="ml-service-bench-batch-") as tmp:
        try:
            results.batch = batch.measure(
                args.bin, args.model_dir, Path(tmp), spark=not args.no_spark
            )
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            results.failures.append(f"batch: {exc}")
    evaluate_batch(results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.bin, args.model_dir = args.bin.absolute(), args.model_dir.absolute()
    if args.src:
        args.src = args.src.absolute()
        sys.path.insert(0, str(args.src))
    if args.baseline_src:
        args.baseline_src = args.baseline_src.absolute()
    from ml_service.model.artifact import load_serving
    from ml_service.predictor import Predictor

    servers = args.only in ("all", "servers")
    if servers and shutil.which("wrk") is None:
        print("bench: wrk is not installed (make bench installs it)", file=sys.stderr)
        return 2
    artifact = load_serving(args.model_dir)
    server_cpu, client_cpu = pick_cpus()
    every_cpu = os.sched_getaffinity(0)
    if client_cpu is not None and servers:
        os.sched_setaffinity(0, {client_cpu})
    settings = {
        "duration": args.duration,
        "rounds": args.rounds,
        # Batch runs last at least BATCH_SECONDS: 64 concurrent 10,000-row requests take about
        # two seconds each, so a shorter run would mostly count requests still in flight.
        "batch_duration": max(args.duration, BATCH_SECONDS),
        "batch_rounds": min(args.rounds, BATCH_ROUNDS),
        "connections": args.connections,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "log_level": args.log_level,
        "model": artifact.name,
        "model_version": artifact.version,
        "src": str(args.src or ""),
        "baseline_src": str(args.baseline_src or ""),
    }
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results = Results(started=started, machine=machine(), settings=settings)
    if servers:
        kinds, one, rows = request_kinds(artifact.schema, artifact.name)
        print("bench: the model alone, in-process", flush=True)
        results.model = model_alone(args.model_dir, one, rows)
        predictor = Predictor(artifact)
        expected = {"one": values(predictor.predict(one)), "batch": values(predictor.predict(rows))}
        args.logs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ml-service-bench-") as tmp:
            try:
                run_servers(args, kinds, expected, (server_cpu, client_cpu), Path(tmp), results)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                results.failures.append(str(exc))
        evaluate(results)
    if args.only in ("all", "batch"):
        os.sched_setaffinity(0, every_cpu)  # Spark's local[2] needs two cores
        batch_section(args, results)
    results.failures.extend(
        f"{r.server} {r.request} c={r.connections}: {r.errors} failed requests"
        for r in results.runs
        if r.errors
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(asdict(results), indent=2) + "\n")
    text = markdown(results)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    if results.failures:
        print("bench: FAILED: " + "; ".join(results.failures), file=sys.stderr)
        return 1
    missed = [t["target"] for t in results.targets if not t["met"]]
    if missed and args.strict:
        print("bench: targets missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
