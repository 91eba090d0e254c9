"""The container image's recipe, read: what only the Dockerfile itself can show.

The built image is run for real by tests/image (`make image-test`): readiness, the dialects, the
healthcheck, the user, the read-only file system and the stop. What stays here is what a run
cannot see: the default base is the registry's pinned slim Python, the model is trained in a
build stage with the documented command, the final stage gets only the runtime lock, the build
context holds only what the build copies, and every setting the image sets is one the service
reads.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml_service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


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
    assert "--require-hashes -r requirements/build.txt" in build
    copies = final.all("COPY")
    assert any(c.startswith("--from=") and c.endswith(f"{model_dir} {model_dir}") for c in copies)
    assert final.env()["ML_SERVICE_MODEL_DIR"] == model_dir


def test_final_stage_holds_only_runtime_files(stages: list[Stage], final: Stage) -> None:
    by_name = {stage.name: stage for stage in stages}
    copies = [c.split() for c in final.all("COPY")]
    assert not final.all("RUN") or all("pip" not in run for run in final.all("RUN"))
    sources = {c[0].removeprefix("--from="): c[1:-1] for c in copies}
    assert set(sources) == {"deps", "build"}, copies
    deps = "\n".join(by_name["deps"].all("RUN"))
    assert "--require-hashes -r /tmp/runtime.txt" in deps
    assert "uninstall --yes pip" in deps
    assert "dev.txt" not in deps
    assert "build.txt" not in deps
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
