"""`ml-service predict`, the smoke test of every deployment, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import Trained
from tests.support.server import BIN, Server, free_port, running_server

from ml_service import client
from ml_service.errors import ClientError

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(model_dir, tmp_path_factory.mktemp("server")) as running:
        yield running


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ml-service"), "predict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_default_request_is_the_original_sample(server: Server) -> None:
    result = run("--url", server.url)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["dialect"] == "original"
    assert 15 < answer["predictions"][0] < 40


def test_csv_rows_in_every_dialect(server: Server, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "CHAS,RM,TAX,PTRATIO,B,LSTAT\n0,6.575,296,15.3,396.9,4.98\n"
        "1,7.2,242,17.8,392.8,4.0\n0,5.5,666,20.2,100,25\n"
    )
    answers = []
    for dialect in ("original", "v1", "v2"):
        result = run("--url", server.url, "--file", str(rows), "--dialect", dialect)
        assert result.returncode == 0, result.stderr
        answers.append(json.loads(result.stdout)["predictions"])
    assert len(answers[0]) == 3
    assert answers[0] == answers[1] == answers[2]


def test_v1_and_v2_request_files(server: Server, tmp_path: Path) -> None:
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps({"instances": [[0, 6.575, 296, 15.3, 396.9, 4.98]]}))
    v2 = tmp_path / "v2.json"
    v2.write_text(
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 6],
                        "datatype": "FP64",
                        "data": [0, 6.575, 296, 15.3, 396.9, 4.98],
                    }
                ]
            }
        )
    )
    for path in (v1, v2):
        result = run("--url", server.url, "--file", str(path))
        assert result.returncode == 0, result.stderr


def test_a_bad_request_fails_with_the_servers_reasons(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "CHAS": {"0": 3},
                "RM": {"0": 6},
                "TAX": {"0": 296},
                "PTRATIO": {"0": 15},
                "B": {"0": 396},
                "LSTAT": {"0": 5},
            }
        )
    )
    result = run("--url", server.url, "--file", str(bad), "--retries", "0")
    assert result.returncode == 1
    assert "answered 422" in result.stderr
    assert "CHAS/0: CHAS must be 0 or 1, got 3" in result.stderr


def test_implausible_predictions_fail_the_smoke_test(server: Server) -> None:
    result = run("--url", server.url, "--min", "40", "--max", "60")
    assert result.returncode == 1
    assert "outside [40.0, 60.0]" in result.stderr


def test_unreachable_service_is_retried_then_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--url", url, "--retries", "2", "--timeout", "1")
    assert result.returncode == 1
    assert "gave up after 3 attempts" in result.stderr
    assert "cannot reach" in result.stderr


def test_not_ready_is_retried_with_backoff(tmp_path: Path) -> None:
    delays: list[float] = []
    # An empty model repository: the server lives, and answers 503 until a model appears.
    empty = tmp_path / "repository"
    empty.mkdir()
    env = {"ML_SERVICE_MODEL_REPOSITORY": str(empty)}
    with running_server(None, tmp_path, env=env, ready=False) as down:
        request = client.classify({"RM": {"0": 6}}, "test")
        with pytest.raises(ClientError, match="answered 503"):
            client.predict(down.url, request, retries=4, sleep=delays.append)
    assert delays == [0.5, 1.0, 2.0, 4.0]


def test_unreadable_request_files(tmp_path: Path) -> None:
    missing = run("--file", str(tmp_path / "nope.json"))
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "not valid JSON" in run("--file", str(broken)).stderr


def test_a_classifiers_labels_and_probabilities_from_a_csv_with_text_and_blanks(
    churn: Trained, tmp_path: Path
) -> None:
    schema = churn.result.schema
    names = list(schema.names)
    first = schema.examples[0]
    nullable = [f.name for f in schema.features if f.nullable]
    rows = tmp_path / "rows.csv"
    cells = [["" if first.get(n) is None else str(first.get(n)) for n in names]]
    cells.append(["" if n in nullable else cells[0][j] for j, n in enumerate(names)])
    rows.write_text("\n".join(",".join(r) for r in [names, *cells]) + "\n")
    with running_server(churn.path, tmp_path) as server:
        for dialect in ("original", "v1", "v2"):
            result = run(
                "--url", server.url, "--model", "churn", "--file", str(rows), "--dialect", dialect
            )
            assert result.returncode == 0, result.stderr
            answer = json.loads(result.stdout)
            assert set(answer["predictions"]) <= {str(c) for c in schema.target.classes or ()}
            assert len(answer["probabilities"]) == 2


def test_keys_come_from_the_environment_or_a_file(model_dir: Path, tmp_path: Path) -> None:
    key = "cli-test-key-0123456789"
    env = {"ML_SERVICE_API_KEYS": key}
    with running_server(model_dir, tmp_path, env=env) as server:
        refused = run("--url", server.url, "--retries", "0")
        assert refused.returncode == 1
        assert "answered 401" in refused.stderr
        key_file = tmp_path / "key"
        key_file.write_text(key + "\n")
        assert run("--url", server.url, "--api-key-file", str(key_file)).returncode == 0
        with_env = subprocess.run(
            [str(BIN / "ml-service"), "predict", "--url", server.url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "ML_SERVICE_API_KEY": key},
        )
        assert with_env.returncode == 0, with_env.stderr
