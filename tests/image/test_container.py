"""The built image, run as Kubernetes runs it, and checked from outside.

The container gets what the pod in deploy/k8s gets: a read-only root file system, a tmpfs at
/tmp, uid/gid 10001, every capability dropped, no new privileges, explicit file and process
limits, and `PORT` set (to a port other than the image's default, so the setting must be
honoured). The tests talk to it over a port published on the loopback address only.

They run when ML_SERVICE_IMAGE names the image to test (`make image-test` builds it and sets
it); the engine is CONTAINER_ENGINE, else the first of podman and docker that answers.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.http import test_contract as contract
from tests.support.inflight import batch_body, post_batch, ready_status, unread_bytes
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("ML_SERVICE_IMAGE", "")
PORT = 8080
UID = 10001
GRACE = 45  # terminationGracePeriodSeconds of deploy/k8s
MAX_IMAGE_BYTES = 600_000_000

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not IMAGE, reason="ML_SERVICE_IMAGE is not set (make image-test sets it)"),
]


def find_engine() -> str:
    wanted = os.environ.get("CONTAINER_ENGINE", "")
    for engine in [wanted] if wanted else ["podman", "docker"]:
        if shutil.which(engine) and run_engine(engine, "info", check=False).returncode == 0:
            return engine
    pytest.fail(f"no container engine answers (tried {wanted or 'podman, docker'})")


def run_engine(
    engine: str, *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [engine, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{engine} {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def limit(kind: int, wanted: int) -> int:
    """`wanted`, or the host's hard limit where that is lower (a container cannot exceed it)."""
    hard = resource.getrlimit(kind)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


@dataclass
class Container:
    """A running container of the image: its engine, name, published URL and start time."""

    engine: str
    name: str
    url: str
    started: float
    cold_start: float = 0.0

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_engine(self.engine, *args, check=check)

    def inspect(self, template: str) -> str:
        return self("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = self("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-4000:]

    def exec(
        self, *command: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return self("exec", *flags, self.name, *command, check=False)

    def wait_ready(self, deadline: float = 60) -> float:
        """Poll /health/ready until it answers 200; seconds since the container was started."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.inspect("{{.State.Running}}") != "true":
                raise AssertionError(f"container exited:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"never ready:\n{self.logs()}")


@pytest.fixture(scope="module")
def engine() -> str:
    return find_engine()


@pytest.fixture(scope="module")
def image_config(engine: str) -> dict[str, Any]:
    result = run_engine(engine, "image", "inspect", IMAGE, check=False)
    assert result.returncode == 0, f"image {IMAGE} does not exist (make image): {result.stderr}"
    (config,) = json.loads(result.stdout)
    assert isinstance(config, dict)
    return config


def healthcheck(image_config: dict[str, Any]) -> dict[str, Any]:
    """The image's HEALTHCHECK (docker keeps it in Config, podman beside it)."""
    found = image_config["Config"].get("Healthcheck") or image_config.get("Healthcheck")
    assert isinstance(found, dict), "the image has no HEALTHCHECK"
    return found


def start(engine: str, name: str) -> Container:
    """`engine run` the image as the pod spec of deploy/k8s runs it."""
    host_port = free_port()
    nofile = limit(resource.RLIMIT_NOFILE, 65536)
    nproc = limit(resource.RLIMIT_NPROC, 8192)
    flags = ["--read-only", "--tmpfs", "/tmp:rw,size=64m,mode=1777"]
    flags += ["--user", f"{UID}:{UID}", "--cap-drop=ALL", "--security-opt", "no-new-privileges"]
    flags += ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]
    flags += ["--env", f"PORT={PORT}", "--publish", f"127.0.0.1:{host_port}:{PORT}"]
    if engine == "podman":
        # crun cannot set up this kernel's hybrid cgroups; the healthcheck is run by hand.
        flags += ["--runtime", "runc"] if shutil.which("runc") else []
        flags += ["--health-interval", "disable"]
    started = time.monotonic()
    run_engine(engine, "run", "--detach", "--name", name, *flags, IMAGE)
    return Container(engine, name, f"http://127.0.0.1:{host_port}", started)


@contextmanager
def running(engine: str, label: str) -> Iterator[Container]:
    """A container of the image for the duration of the block, removed afterwards."""
    name = f"ml-service-test-{os.getpid()}-{label}"
    run_engine(engine, "rm", "--force", name, check=False)
    container = start(engine, name)
    try:
        yield container
    finally:
        run_engine(engine, "kill", name, check=False)
        run_engine(engine, "rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def container(engine: str, image_config: dict[str, Any]) -> Iterator[Container]:
    """One container of the image, ready, shared by the checks that do not stop it."""
    with running(engine, "serve") as served:
        took = served.wait_ready()
        print(f"\ncold start, engine run to /health/ready 200: {took:.2f} s")
        served.cold_start = took
        yield served


@pytest.fixture(scope="module")
def wire(container: Container) -> Iterator[httpx.Client]:
    """A client of the container's published port."""
    with httpx.Client(base_url=container.url, timeout=30) as client:
        yield client


def test_image_is_small_non_root_and_layered(engine: str, image_config: dict[str, Any]) -> None:
    size = int(image_config["Size"])
    history = run_engine(engine, "history", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE)
    layers = [line.split("\t", 1) for line in history.stdout.splitlines()]
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB")
    for layer_size, created_by in reversed(layers):
        if layer_size not in {"0 B", "0B"}:
            print(f"  {layer_size:>10}  {created_by[:90]}")
    assert size < MAX_IMAGE_BYTES, f"{size / 1e6:.0f} MB"
    assert image_config["Config"]["User"] == f"{UID}:{UID}"
    assert image_config["Config"]["Cmd"][:2] == ["ml-service", "serve"]


def test_becomes_ready_well_within_the_start_period(
    container: Container, image_config: dict[str, Any]
) -> None:
    start_period = healthcheck(image_config)["StartPeriod"] / 1e9
    assert container.cold_start < start_period, f"{container.cold_start:.1f} s"


# The HTTP contract's own tests (tests/http/test_contract.py), sent over the wire to the
# container: an httpx client has the in-process test client's interface.


def test_original_sample_request(wire: httpx.Client, sample: dict[str, Any]) -> None:
    contract.test_original_sample_request(wire, sample)  # type: ignore[arg-type]


def test_three_dialects_agree_on_the_same_rows(wire: httpx.Client) -> None:
    contract.test_three_dialects_agree_on_the_same_rows(wire)  # type: ignore[arg-type]


def test_errors_are_the_contracts(wire: httpx.Client, sample: dict[str, Any]) -> None:
    contract.test_unknown_path_model_and_version_are_404(wire)  # type: ignore[arg-type]
    contract.test_non_json_content_type_is_415(wire, sample)  # type: ignore[arg-type]
    contract.test_rows_over_the_limit_are_413(wire)  # type: ignore[arg-type]
    contract.test_schema_problems_are_422_with_every_location(wire)  # type: ignore[arg-type]


def test_probes_and_page(wire: httpx.Client) -> None:
    contract.test_probes(wire)  # type: ignore[arg-type]
    contract.test_home_page_keeps_the_heading_and_a_strict_policy(wire)  # type: ignore[arg-type]


def test_healthcheck_passes_and_fails_without_a_server(
    container: Container, image_config: dict[str, Any]
) -> None:
    kind, *command = healthcheck(image_config)["Test"]
    assert kind == "CMD"
    passed = container.exec(*command)
    assert passed.returncode == 0, passed.stderr
    nothing_there = container.exec(*command, env={"PORT": "1"})
    assert nothing_there.returncode != 0
    if container.engine == "podman":
        assert container("healthcheck", "run", container.name, check=False).returncode == 0


def test_every_process_runs_as_the_user_without_privileges(container: Container) -> None:
    script = (
        "import glob, json; print(json.dumps([dict(l.split(':\\t', 1) for l in "
        "open(p).read().splitlines() if l.startswith(('Uid', 'Gid', 'CapEff', 'NoNewPrivs'))) "
        "for p in glob.glob('/proc/[0-9]*/status')]))"
    )
    result = container.exec("python", "-c", script)
    assert result.returncode == 0, result.stderr
    processes = json.loads(result.stdout)
    assert len(processes) >= 3, processes  # the master, at least one worker, this probe
    for status in processes:
        assert set(status["Uid"].split()) == {str(UID)}, status
        assert set(status["Gid"].split()) == {str(UID)}, status
        assert int(status["CapEff"], 16) == 0, status
        assert status["NoNewPrivs"] == "1", status


def test_runtime_holds_no_training_libraries_pip_or_compilers(container: Container) -> None:
    modules = "sklearn", "skl2onnx", "scipy", "pip", "setuptools"
    probe = f"import importlib.util as u; print([m for m in {modules!r} if u.find_spec(m)])"
    found = container.exec("python", "-c", probe)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr
    tools = container.exec("sh", "-c", "command -v gcc cc c++ make pip pip3 || true")
    assert tools.stdout.strip() == ""


def test_nothing_is_written_outside_tmp(container: Container, wire: httpx.Client) -> None:
    assert wire.get("/metrics").status_code == 200
    assert container("diff", container.name).stdout.strip() == ""
    # The service does write: its metrics directory, on the tmpfs.
    assert "ml-service-metrics" in container.exec("ls", "/tmp").stdout


def test_stop_drains_in_flight_batches_then_exits_zero(engine: str) -> None:
    count, rows = 4, 10_000
    body = batch_body(rows)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    release = threading.Event()
    sent = [threading.Event() for _ in range(count)]
    with (
        running(engine, "stop") as container,
        httpx.Client(limits=limits) as senders,
        ThreadPoolExecutor(count) as pool,
    ):
        container.wait_ready()
        # The container's own network namespace, seen from here through its first process.
        pid = container.inspect("{{.State.Pid}}")
        net = Path(f"/proc/{pid}/net")
        futures: list[Future[str]] = [
            pool.submit(post_batch, senders, container.url, body, event, release) for event in sent
        ]
        try:
            deadline = time.monotonic() + 30
            while True:
                unread = unread_bytes(PORT, net)
                if all(e.is_set() for e in sent) and len(unread) == count and not any(unread):
                    break
                assert time.monotonic() < deadline, f"batches never all in flight: {unread}"
                time.sleep(0.005)

            sent_at = time.monotonic()
            stop = subprocess.Popen(
                [engine, "stop", "--time", str(GRACE), container.name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            probes = [ready_status(container.url)]
            while probes[-1] not in {"ConnectError", "ConnectTimeout", "ReadError"}:
                assert time.monotonic() < sent_at + 10, f"still accepting: {probes}"
                time.sleep(0.02)
                probes.append(ready_status(container.url))
            assert not any(f.done() for f in futures), "a batch was answered before its end"
            assert Path(f"/proc/{pid}").exists(), "the server exited with work in flight"
        finally:
            release.set()
        statuses = [f.result(timeout=GRACE) for f in futures]
        _, errors = stop.communicate(timeout=GRACE + 15)
        took = time.monotonic() - sent_at
        exit_code = container.inspect("{{.State.ExitCode}}")
        logs = container.logs()

    assert statuses == ["200"] * count, f"in-flight batches: {statuses}\n{logs}"
    # Readiness may answer 200 until the engine has delivered SIGTERM, never after it has not.
    turned = next(i for i, probe in enumerate(probes) if probe != "200")
    assert set(probes[turned:]) <= {"503", "ReadError", "ConnectError", "ConnectTimeout"}, probes
    assert stop.returncode == 0, errors
    assert exit_code == "0", f"exit code {exit_code}\n{logs}"
    assert took < GRACE, f"stop took {took:.1f} s, grace period is {GRACE} s"
    print(f"\nstop with {count} batches in flight: {took:.2f} s, exit code {exit_code}")
