"""`make lint` fails on a broken file of every kind it checks.

Each case copies a real file of the repository (or a small clean sample: for Python, and for
the Dockerfile while none exists), checks that the unchanged copy passes the real make
sub-target, then breaks the copy and checks that the same sub-target fails. The sub-targets
take their file lists from variables (`LINT_SH_FILES=...`), so these tests run exactly the
commands `make lint` runs.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
Break = Callable[[str], str]

CLEAN_PYTHON = '''"""A small, clean, strictly typed module."""

from __future__ import annotations


def double(value: int) -> int:
    """Twice `value`."""
    return 2 * value
'''

CLEAN_DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY . /app
USER 65534
CMD ["python", "-m", "http.server"]
"""


def make(target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run one make sub-target from the repository root with variable overrides."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    args = ["make", "--no-print-directory", target, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def check_gate(target: str, variable: str, copy: Path, break_it: Break, **extra: str) -> None:
    """The clean copy passes `target`; the broken copy fails it."""
    clean = make(target, **{variable: str(copy)}, **extra)
    assert clean.returncode == 0, f"clean copy of {copy.name} fails:\n{clean.stdout}{clean.stderr}"
    copy.write_text(break_it(copy.read_text()))
    broken = make(target, **{variable: str(copy)}, **extra)
    assert broken.returncode != 0, f"broken {copy.name} passes {target}:\n{broken.stdout}"


def copy_of(source: Path, tmp_path: Path, name: str | None = None) -> Path:
    """A copy of `source` in tmp_path."""
    target = tmp_path / (name or source.name)
    target.write_text(source.read_text())
    return target


def append(text: str) -> Break:
    return lambda original: original.rstrip("\n") + "\n" + text


def insert_job(job: str) -> Break:
    """Insert `job` (written with a 2-space indent) as the first job of a workflow."""

    def insert(original: str) -> str:
        match = re.search(r"^jobs:\n( +)", original, flags=re.MULTILINE)
        assert match, "workflow without jobs"
        indent = match.group(1)
        lines = "".join(f"{indent}{line[2:]}\n" for line in job.splitlines())
        at = match.start(1)
        return original[:at] + lines + original[at:]

    return insert


PY_BREAKS: dict[str, Break] = {
    "ruff-check": append("import os\n"),
    "ruff-format": append("BROKEN = {  'a':1 }\n"),
    "mypy": append('\n\ndef broken() -> int:\n    """Wrong type."""\n    return "text"\n'),
}


@pytest.mark.parametrize("kind", sorted(PY_BREAKS))
def test_broken_python_fails_lint(kind: str, tmp_path: Path) -> None:
    copy = tmp_path / "module_copy.py"
    copy.write_text(CLEAN_PYTHON)
    check_gate("lint-python", "LINT_PY_PATHS", copy, PY_BREAKS[kind], LINT_MYPY_PATHS=str(copy))


def test_broken_shell_fails_lint(tmp_path: Path) -> None:
    copy = copy_of(ROOT / "scripts/ensure-apt.sh", tmp_path)
    check_gate("lint-shell", "LINT_SH_FILES", copy, append('cd $1\necho "done"\n'))


def test_broken_dockerfile_fails_lint(tmp_path: Path) -> None:
    source = ROOT / "Dockerfile"
    copy = tmp_path / "Dockerfile"
    copy.write_text(source.read_text() if source.is_file() else CLEAN_DOCKERFILE)
    broken = "FROM debian:latest AS broken\nRUN sudo apt-get update && cd /tmp\nMAINTAINER x\n"
    check_gate("lint-docker", "LINT_DOCKER_FILES", copy, append(broken))


WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
WORKFLOW_BREAKS: dict[str, Break] = {
    # A key the workflow schema does not allow (both actionlint and the schema catch it).
    "unknown-key": insert_job(
        "  broken:\n    runs-on: ubuntu-latest\n    bogus-key: 1\n    steps:\n"
        "      - run: echo hi\n"
    ),
    # Valid against the schema, wrong for actionlint: a dependency on a job that does not exist.
    "unknown-needs": insert_job(
        "  broken:\n    runs-on: ubuntu-latest\n    needs: no-such-job\n    steps:\n"
        "      - run: echo hi\n"
    ),
    # A shell bug inside a run: block (actionlint runs shellcheck on it).
    "shell-in-run": insert_job(
        "  broken:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cd $UNQUOTED_DIR\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(WORKFLOW_BREAKS))
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_broken_workflow_fails_lint(workflow: Path, kind: str, tmp_path: Path) -> None:
    copy = copy_of(workflow, tmp_path)
    check_gate("lint-workflows", "LINT_WORKFLOW_FILES", copy, WORKFLOW_BREAKS[kind])


AZURE_BREAKS: dict[str, Break] = {
    "unknown-top-level-key": append("bogusTopLevelKey: 1\n"),
    "bad-stage": lambda text: text.replace("- stage:", "- stagee:", 1),
}


@pytest.mark.parametrize("kind", sorted(AZURE_BREAKS))
def test_broken_azure_pipeline_fails_lint(kind: str, tmp_path: Path) -> None:
    copy = copy_of(ROOT / "azure-pipelines.yml", tmp_path)
    check_gate("lint-azure-pipelines", "LINT_AZURE_FILES", copy, AZURE_BREAKS[kind])


YAML_BREAKS: dict[str, Break] = {
    "syntax": append("broken: [unclosed\n"),
    "duplicate-key": lambda text: (
        text + text.split("\n", 1)[0] + "\n"
        if re.match(r"^[A-Za-z_-]+:", text)
        else text + "dup: 1\ndup: 2\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(YAML_BREAKS))
def test_broken_yaml_fails_lint(kind: str, tmp_path: Path) -> None:
    copy = copy_of(ROOT / ".yamllint.yml", tmp_path, "copy.yml")
    check_gate("lint-yaml", "LINT_YAML_FILES", copy, YAML_BREAKS[kind])


def test_lint_runs_every_step() -> None:
    """`make lint` depends on every sub-target the gate promises."""
    database = subprocess.run(
        ["make", "-pq", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    ).stdout
    prerequisites = next(x for x in database.splitlines() if x.startswith("lint:")).split()
    for step in (
        "lint-python",
        "lint-shell",
        "lint-docker",
        "lint-workflows",
        "lint-azure-pipelines",
        "lint-yaml",
    ):
        assert step in prerequisites
