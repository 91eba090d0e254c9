"""Memory under greedy clients: many 10,000-row uploads at once stay within the pod's limit.

The server runs with the pod's settings (the base ConfigMap: two workers, its cap on requests
in progress). Clients open 64, then 256, connections and write a whole 10,000-row KServe V1
request on each at once, as fast as the machine allows; meanwhile the proportional set size of
the whole process tree (master and workers, each shared page divided among the processes that
map it, which is how the container is charged for them) is sampled, and its peak must stay
under the bound docs/kubernetes.md states. Requests over the cap are refused with 503 and
`Retry-After`; every other one gets its 200 with all its predictions.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.support.inflight import batch_body
from tests.support.rawhttp import request
from tests.support.server import Server, running_server, tree_pss_mib

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATION = ROOT / "deploy" / "k8s" / "base" / "kustomization.yaml"
# The bound docs/kubernetes.md documents ("Memory bound"): the server's peak memory under 64
# and under 256 concurrent 10,000-row uploads, 64 MiB below the pod's 512 Mi limit.
BOUND_MIB = 448
# The pod's settings that shape the server's memory (the rest place it in the container).
POD_SETTINGS = (
    "ML_SERVICE_WORKERS",
    "ML_SERVICE_MAX_IN_PROGRESS",
    "ML_SERVICE_MAX_BODY_BYTES_IN_PROGRESS",
    "ML_SERVICE_MAX_BODY_BYTES",
    "ML_SERVICE_MAX_ROWS",
)
ROWS = 10_000

pytestmark = [pytest.mark.server, pytest.mark.slow]


def batch() -> bytes:
    return request("POST", "/v1/models/housing:predict", batch_body(ROWS))


async def upload(port: int, data: bytes) -> str:
    """Send one whole request and read the whole answer: `200/<predictions>`, or the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        fields = dict(
            line.split(": ", 1) for line in head.decode("latin-1").lower().split("\r\n")[1:-2]
        )
        body = await reader.readexactly(int(fields["content-length"]))
    finally:
        writer.close()
    status = head.split(b" ", 2)[1].decode()
    if status == "200":
        return f"200/{len(json.loads(body)['predictions'])}"
    if status == "503" and "retry-after" in fields:
        return "503+retry-after"
    return status


def peak_memory(server: Server, clients: int, data: bytes) -> tuple[float, Counter[str]]:
    """Run `clients` uploads at once; the peak MiB seen meanwhile, and the answers."""
    peak = tree_pss_mib(server.process.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, tree_pss_mib(server.process.pid))

    async def all_at_once() -> list[str]:
        return await asyncio.gather(*(upload(server.port, data) for _ in range(clients)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        answers = asyncio.run(all_at_once())
    finally:
        done.set()
        sampler.join(timeout=10)
    return peak, Counter(answers)


def pod_settings() -> dict[str, str]:
    """The memory-shaping settings of the base ConfigMap."""
    (generator,) = yaml.safe_load(KUSTOMIZATION.read_text())["configMapGenerator"]
    literals = dict(literal.split("=", 1) for literal in generator["literals"])
    return {name: literals[name] for name in POD_SETTINGS if name in literals}


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {**pod_settings(), "ML_SERVICE_LOG_LEVEL": "warning"}
    assert env["ML_SERVICE_WORKERS"] == "2"
    with running_server(model_dir, tmp_path_factory.mktemp("memory"), env=env) as running:
        yield running


@pytest.mark.parametrize("clients", [64, 256])
def test_greedy_uploads_stay_under_the_memory_bound(server: Server, clients: int) -> None:
    peak, answers = peak_memory(server, clients, batch())
    print(f"{clients} concurrent uploads: peak {peak:.0f} MiB, answers {dict(answers)}")
    assert set(answers) <= {f"200/{ROWS}", "503+retry-after"}, answers
    assert answers[f"200/{ROWS}"] > 0
    assert peak < BOUND_MIB, f"peak {peak:.0f} MiB over the documented {BOUND_MIB} MiB"
