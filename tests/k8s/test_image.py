"""The container image's recipe: structure, settings, and the command it runs, run for real.

No container engine exists here, so the Dockerfile is read rather than built: its final stage's
`ENV` lines and exec-form `CMD` are replayed against the package installed in .venv, on a free
loopback port, and the service must become ready, pass the image's own `HEALTHCHECK` command and
answer a prediction. A change to the command, its settings or the CLI that breaks the image
therefore breaks this test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support.server import free_port, running_server

from ml_service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = ROOT / ".venv" / "bin"


@dataclass
class Stage:
    """One build stage: its base image, name and instructions (keyword, arguments)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        """The stage's ENV settings, `$VAR` references expanded as docker does."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = re.sub(
                    r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), f"${m.group(1)}"), value
                )
        return values

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON (exec-form) argument list of the last `keyword` instruction."""
        (args,) = self.all(keyword)[-1:]
        if keyword == "HEALTHCHECK":
            args = args[args.index("CMD") + 3 :]
        value = json.loads(args)
        assert isinstance(value, list)
        assert all(isinstance(v, str) for v in value)
        return value


def instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        result.append((keyword.upper(), " ".join(args.split())))
        current = ""
    return result


def parse(text: str) -> list[Stage]:
    """The build stages of a Dockerfile, global ARG defaults substituted into FROM lines."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in instructions(text):
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], rest.split()[0])
            name = rest.split()[2] if " AS " in rest.upper() else str(len(stages))
            stages.append(Stage(base, name))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_multi_stage_from_pinned_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", stage.base), (
            f"{stage.name}: base image {stage.base} is not pinned to a patch release"
        )
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(p) for p in python.removeprefix(">=").split("."))
    version = tuple(int(p) for p in stages[-1].base.split(":")[1].split("-")[0].split(".")[:2])
    assert version >= minimum


def test_model_is_trained_in_the_build_stage_and_served_from_the_final(
    stages: list[Stage], final: Stage
) -> None:
    build = "\n".join(args for stage in stages[:-1] for args in stage.all("RUN"))
    out = re.search(r"ml-service train .*?--out (\S+)", build)
    assert out, "no build stage runs `ml-service train ... --out DIR`"
    model_dir = out.group(1)
    assert "--require-hashes -r requirements/dev.txt" in build
    copies = final.all("COPY")
    assert any(c.startswith("--from=") and c.endswith(f"{model_dir} {model_dir}") for c in copies)
    assert final.env()["ML_SERVICE_MODEL_DIR"] == model_dir


def test_final_stage_holds_only_runtime_files(final: Stage) -> None:
    runs = "\n".join(final.all("RUN"))
    assert "--require-hashes -r /tmp/runtime.txt" in runs
    assert "--no-deps" in runs
    assert "dev.txt" not in runs
    for copy in final.all("COPY"):
        sources = copy.split()[:-1]
        assert "." not in sources, f"final stage copies the whole context: COPY {copy}"
        assert not any(s.startswith(("src", "data", "tests")) for s in sources), copy
    runtime = (ROOT / "requirements" / "runtime.txt").read_text().lower()
    assert "scikit-learn==" not in runtime
    assert "onnxruntime==" in runtime


def test_runs_unprivileged_read_only_friendly(final: Stage) -> None:
    (user,) = final.all("USER")[-1:]
    assert user.split(":")[0] not in {"root", "0"}
    env = final.env()
    assert env["ML_SERVICE_HOST"] == "0.0.0.0"
    assert env["HOME"].startswith("/tmp")
    assert env["ML_SERVICE_METRICS_DIR"].startswith("/tmp/")
    assert final.all("EXPOSE") == [env["PORT"]]
    assert final.all("HEALTHCHECK"), "no HEALTHCHECK"
    assert final.exec_form("CMD")[:2] == ["ml-service", "serve"]
    known = {Settings.env_name(name) for name in Settings.model_fields}
    ours = {k for k in env if k.startswith("ML_SERVICE_") or k == "PORT"}
    assert ours <= known, f"settings the service does not read: {ours - known}"


def test_dockerignore_lets_in_only_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore must start by excluding everything"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
                assert (ROOT / source).exists() or source == "README.md", source


def healthcheck(final: Stage, port: int) -> subprocess.CompletedProcess[str]:
    """Run the image's HEALTHCHECK command here, against `port`."""
    command = final.exec_form("HEALTHCHECK")
    assert command[0] == "python"
    return subprocess.run(
        [str(VENV_BIN / "python"), *command[1:]],
        env={**os.environ, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.server
def test_image_command_serves_and_predicts(final: Stage, model_dir: Path, tmp_path: Path) -> None:
    env = final.env()
    # Paths that exist only inside the image, and the address, are the test's own: running_server
    # sets PORT, the loopback host, the model and metrics directories.
    local = {"PATH", "HOME", "PORT", "ML_SERVICE_HOST", "ML_SERVICE_MODEL_DIR"}
    local |= {"ML_SERVICE_METRICS_DIR"}
    image_env = {k: v for k, v in env.items() if k not in local}
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    command = final.exec_form("CMD")
    executable = shutil.which(command[0], path=path)
    assert executable, f"{command[0]} is not installed in .venv"

    nothing_there = healthcheck(final, free_port())
    assert nothing_there.returncode != 0, "HEALTHCHECK passes with no server"

    with running_server(
        model_dir,
        tmp_path,
        env={**image_env, "PATH": path, "HOME": str(tmp_path)},
        command=[executable, *command[1:]],
    ) as server:
        port = int(server.url.rsplit(":", 1)[1])
        check = healthcheck(final, port)
        assert check.returncode == 0, check.stderr
        predicted = subprocess.run(
            [str(VENV_BIN / "ml-service"), "predict", "--url", server.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert predicted.returncode == 0, predicted.stderr
        (value,) = json.loads(predicted.stdout)["predictions"]
        assert 5 < value < 60
        assert server.stop() == 0
