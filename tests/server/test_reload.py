"""Live reload against the real server: several workers, a steady stream in every dialect,
several loads and unloads, not one request lost; tritonclient drives the repository API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.repository import add_version, stamp
from tests.support.server import Server, running_server

pytestmark = [pytest.mark.server, pytest.mark.slow]

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]
ROW = [0, 6.575, 296.0, 15.3, 396.9, 4.98]
BODIES: dict[str, tuple[str, Any]] = {
    "original": ("/predict", json.loads((ROOT / "data" / "sample_request.json").read_text())),
    "v1": ("/v1/models/housing:predict", {"instances": [ROW]}),
    "v2": (
        "/v2/models/housing/infer",
        {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": ROW}]},
    ),
}
WORKERS = 3


@pytest.fixture
def repository(model_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repository"
    add_version(model_dir, root, "v1", created_at=stamp(1))
    add_version(model_dir, root, "h1", name="homes", created_at=stamp(1))
    return root


@pytest.fixture
def server(repository: Path, tmp_path: Path) -> Iterator[Server]:
    env = {
        "ML_SERVICE_MODEL_REPOSITORY": str(repository),
        "ML_SERVICE_DEFAULT_MODEL": "housing",
        "ML_SERVICE_WORKERS": str(WORKERS),
        "ML_SERVICE_ADMIN_TOKEN": TOKEN,
    }
    with running_server(None, tmp_path, env=env) as running:
        running.wait_for_log("Application startup complete.", count=WORKERS)
        yield running


@dataclass
class Answer:
    dialect: str
    sent: float
    status: int
    version: str


@dataclass
class Stream:
    """Clients sending requests in every dialect until stopped, some on fresh connections
    (so that every worker gets some), some on kept-alive ones."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for dialect in BODIES:
            for keep_alive in (True, False):
                thread = threading.Thread(target=self._run, args=(dialect, keep_alive))
                thread.start()
                self.threads.append(thread)

    def _run(self, dialect: str, keep_alive: bool) -> None:
        path, body = BODIES[dialect]
        limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)
        with httpx.Client(base_url=self.url, timeout=30, limits=limits) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(path, json=body)
                except httpx.TransportError as exc:
                    self.answers.append(Answer(dialect, sent, -1, repr(exc)))
                    continue
                version = response.headers.get("x-model-version", "")
                if dialect == "v2" and response.status_code == 200:
                    assert response.json()["model_version"] == version
                self.answers.append(Answer(dialect, sent, response.status_code, version))

    def count(self) -> int:
        return len(self.answers)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def wait_until(condition: Any, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition never held"
        time.sleep(0.01)


def test_reloads_under_load_lose_no_request(
    server: Server, repository: Path, model_dir: Path
) -> None:
    stream = Stream(server.url)
    stream.start()
    loaded: list[tuple[float, str]] = []
    try:
        wait_until(lambda: stream.count() >= 30)
        for number in range(2, 6):
            version = f"v{number}"
            add_version(model_dir, repository, version, created_at=stamp(number))
            response = httpx.post(
                f"{server.url}/v2/repository/models/housing/load", headers=ADMIN, timeout=60
            )
            assert response.status_code == 200, response.text
            assert response.json()["default"] == version
            loaded.append((time.monotonic(), version))
            seen = stream.count()
            wait_until(lambda seen=seen: stream.count() >= seen + 60)
    finally:
        stream.finish()

    failed = [a for a in stream.answers if a.status != 200]
    assert not failed, failed[:5]
    for returned, version in loaded:
        after = [a for a in stream.answers if a.sent > returned]
        newer = {v for t, v in loaded if t >= returned}
        stale = [a for a in after if a.version not in newer]
        assert not stale, f"after {version} was loaded: {stale[:5]}"
    assert {a.dialect for a in stream.answers} == set(BODIES)
    assert {a.version for a in stream.answers} >= {"v1", "v5"}
    index = httpx.post(f"{server.url}/v2/repository/index", headers=ADMIN).json()
    assert [(e["name"], e["version"]) for e in index if e["state"] == "READY"] == [
        ("homes", "h1"),
        *(("housing", f"v{n}") for n in range(1, 6)),
    ]


def test_tritonclient_lists_loads_and_unloads(
    server: Server, repository: Path, model_dir: Path
) -> None:
    import tritonclient.http as triton

    host = server.url.removeprefix("http://")
    client = triton.InferenceServerClient(url=host)
    try:
        names = {
            (m["name"], m["version"], m["state"])
            for m in client.get_model_repository_index(headers=ADMIN)
        }
        assert names == {("homes", "h1", "READY"), ("housing", "v1", "READY")}
        add_version(model_dir, repository, "v2", created_at=stamp(2))
        client.load_model("housing", headers=ADMIN)
        assert client.is_model_ready("housing", "v2")
        metadata = client.get_model_metadata("housing")
        assert metadata["versions"] == ["v1", "v2"]
        client.unload_model("homes", headers=ADMIN)
        assert not client.is_model_ready("homes")
        states = {m["name"]: m["state"] for m in client.get_model_repository_index(headers=ADMIN)}
        assert states["homes"] == "UNAVAILABLE"
        with pytest.raises(triton.InferenceServerException, match=r"401|admin token"):
            client.load_model("housing")
        client.load_model("homes", headers=ADMIN)
        assert client.is_model_ready("homes")
    finally:
        client.close()


def test_polling_loads_new_versions_by_itself(
    repository: Path, model_dir: Path, tmp_path: Path
) -> None:
    env = {
        "ML_SERVICE_MODEL_REPOSITORY": str(repository),
        "ML_SERVICE_DEFAULT_MODEL": "housing",
        "ML_SERVICE_WORKERS": "2",
        "ML_SERVICE_REPOSITORY_POLL_SECONDS": "0.2",
        "ML_SERVICE_LOG_LEVEL": "warning",
    }
    with running_server(None, tmp_path, env=env) as running:
        add_version(model_dir, repository, "v2", created_at=stamp(2))
        path, body = BODIES["original"]

        def serving_v2() -> bool:
            with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
                answers = [client.post(running.url + path, json=body) for _ in range(8)]
            return all(a.headers.get("x-model-version") == "v2" for a in answers)

        wait_until(serving_v2)
