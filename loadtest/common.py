"""Shared parts of the load-test profiles: the pass/fail gate and the request bodies.

A locust run on its own only reports numbers; the gate turns it into a verdict the build can
act on. It fails the run when more than `--max-failure-ratio` of the requests failed, when the
95th-percentile response time exceeds `--p95-budget-ms`, or when nothing was measured at all (a
stalled server must not pass). Each profile's `.conf` file holds its budget: the one place it is
set. Request rows come from the training data, and feature names from the running model's card
(`GET /v1/models/<name>`), so a model trained on other columns is load-tested unchanged.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_REQUEST = ROOT / "data" / "sample_request.json"
DATA_CSV = Path(os.environ.get("LOADTEST_DATA", str(ROOT / "data" / "housing.csv")))
MODEL_NAME = os.environ.get("LOADTEST_MODEL", "housing")
REQUEST_TIMEOUT_S = 10.0

log = logging.getLogger("loadtest")


@events.init_command_line_parser.add_listener
def _add_gate_options(parser: Any, **_: Any) -> None:
    """Register the gate's thresholds as locust options (settable in a profile's .conf)."""
    parser.add_argument(
        "--max-failure-ratio",
        type=float,
        default=0.01,
        help="Fail the run when more than this fraction of requests failed.",
    )
    parser.add_argument(
        "--p95-budget-ms",
        type=float,
        default=1000.0,
        help="Fail the run when the 95th-percentile response time exceeds this (ms).",
    )


def verdict(
    requests: int, failure_ratio: float, p95_ms: float, max_failure_ratio: float, budget_ms: float
) -> list[str]:
    """Why a run fails (empty when it passes)."""
    problems = []
    if requests == 0:
        problems.append("no request completed")
    if failure_ratio > max_failure_ratio:
        problems.append(f"failure ratio {failure_ratio:.2%} > {max_failure_ratio:.2%}")
    if p95_ms > budget_ms:
        problems.append(f"p95 {p95_ms:.0f} ms > budget {budget_ms:.0f} ms")
    return problems


@events.quitting.add_listener
def _gate(environment: Environment, **_: Any) -> None:
    """Set locust's exit code from the gate, overriding its fail-on-any-error default."""
    options = environment.parsed_options
    if options is None:
        return
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else 0.0
    problems = verdict(
        total.num_requests,
        total.fail_ratio,
        p95,
        options.max_failure_ratio,
        options.p95_budget_ms,
    )
    summary = (
        f"{total.num_requests} requests, {total.num_failures} failed "
        f"({total.fail_ratio:.2%}), p95 {p95:.0f} ms (budget {options.p95_budget_ms:.0f} ms), "
        f"{total.total_rps:.1f} req/s"
    )
    if problems:
        log.error("load-test gate FAILED: %s -- %s", "; ".join(problems), summary)
        environment.process_exit_code = 1
    else:
        log.warning("load-test gate passed: %s", summary)
        environment.process_exit_code = 0


def sample_body() -> bytes:
    """The original app's sample request, byte for byte."""
    return SAMPLE_REQUEST.read_bytes()


def load_rows(features: list[str]) -> list[list[float]]:
    """Every row of the training data, as values in the model's feature order."""
    with DATA_CSV.open(newline="", encoding="utf-8") as handle:
        return [[float(record[name]) for name in features] for record in csv.DictReader(handle)]


def original_body(features: list[str], rows: list[list[float]]) -> bytes:
    """`POST /predict` body in pandas "columns" orient, as the original clients send it."""
    columns = {
        name: {str(i): row[j] for i, row in enumerate(rows)} for j, name in enumerate(features)
    }
    return json.dumps(columns).encode()


def v1_body(features: list[str], rows: list[list[float]]) -> bytes:
    """KServe V1 body: one object per instance."""
    instances = [dict(zip(features, row, strict=True)) for row in rows]
    return json.dumps({"instances": instances}).encode()


def v2_body(features: list[str], rows: list[list[float]]) -> bytes:
    """Open Inference Protocol body: one FP64 tensor of shape [N, F], flat row-major data."""
    tensor = {
        "name": "input",
        "shape": [len(rows), len(features)],
        "datatype": "FP64",
        "data": [value for row in rows for value in row],
    }
    return json.dumps({"inputs": [tensor]}).encode()
