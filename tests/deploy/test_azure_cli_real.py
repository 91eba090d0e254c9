"""Every `az` line the Azure scripts can produce, checked against the real Azure CLI (installed
by `make azure-cli` into .tools/azure-cli; no account, no network calls beyond the CLI's own
parsing). Skipped when that CLI is absent, unless AZURE_CLI_REQUIRED=1 (`make lint-azure-cli`)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import azure_scenarios as sc
import pytest
from azcli_check import check_lines
from azure_runs import record_all
from stubkit import REPO

AZ_REAL = Path(os.environ.get("AZURE_CLI_REAL") or REPO / ".tools" / "azure-cli" / "bin" / "az")
CACHE = AZ_REAL.resolve().parent.parent / "checked-lines.json"
CALL = re.compile(r'(?:az_run|az_get|az_lookup|"\$AZ")[ \t]+((?:[a-z][a-z-]*[ \t]+)*[a-z][a-z-]*)')


@pytest.fixture(scope="module")
def real_az() -> str:
    """Path of the real `az`."""
    if not AZ_REAL.exists():
        if os.environ.get("AZURE_CLI_REQUIRED") == "1":
            pytest.fail(f"{AZ_REAL} missing: run make azure-cli")
        pytest.skip("real azure-cli not installed (make azure-cli)")
    return str(AZ_REAL)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the recorded runs keep their files (packages, keys, custom data)."""
    return tmp_path_factory.mktemp("azure-runs")


@pytest.fixture(scope="module")
def recorded(runs_root: Path) -> dict[str, list[list[str]]]:
    """The az lines of every path through the scripts (the recording's files stay in place)."""
    return record_all(runs_root)


def command_words(argv: list[str]) -> str:
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    return " ".join(words)


def script_commands() -> set[str]:
    """The az command words written in the scripts (calls and `remove` lines of teardown)."""
    found: set[str] = set()
    for name in sc.OWN_SCRIPTS:
        text = "\n".join(
            line
            for line in sc.script(name).read_text().splitlines()
            if not line.lstrip().startswith(("#", "require_cli"))
        )
        found |= {" ".join(m.group(1).split()) for m in CALL.finditer(text)}
        for line in text.splitlines():
            if line.startswith("remove "):
                tokens = shlex.split(line)
                split = tokens.index("--")
                found.add(command_words(tokens[3:split]))
                found.add(command_words(tokens[split + 1 :]))
    return found


def test_the_recorded_runs_cover_every_az_command_of_the_scripts(
    recorded: dict[str, list[list[str]]],
) -> None:
    seen = {command_words(argv) for lines in recorded.values() for argv in lines}
    written = script_commands()
    assert len(written) > 30
    assert written <= seen, f"never exercised: {sorted(written - seen)}"


def test_every_recorded_az_line_is_accepted_by_the_real_cli(
    real_az: str, recorded: dict[str, list[list[str]]], runs_root: Path
) -> None:
    lines = [argv for lines in recorded.values() for argv in lines]

    def normalize(arg: str) -> str:
        arg = arg.replace(str(runs_root), "<runs>")
        return re.sub(r"agent-cloud-init\.\w+", "agent-cloud-init.XXXXXX", arg)

    failures = check_lines(real_az, lines, cache=CACHE, normalize=normalize)
    assert not failures, "\n".join(str(f) for f in failures)


@pytest.mark.parametrize(
    "argv",
    [
        ["webap", "show", "--name", "x", "--resource-group", "rg"],
        ["group", "show", "--name", "rg", "--bogus"],
        ["webapp", "config", "set", "-g", "rg", "-n", "app", "--ftps-state", "Sometimes"],
        ["webapp", "deploy", "-g", "rg", "-n", "app", "--src-path", "a.zip", "--type", "tarball"],
        ["vm", "create", "-g", "rg", "-n", "vm", "--image", "x", "--authentication-type", "token"],
    ],
)
def test_the_checker_rejects_invalid_lines(real_az: str, argv: list[str]) -> None:
    failures = check_lines(real_az, [argv])
    assert [f.argv for f in failures] == [tuple(argv)]
    assert failures[0].status == 2
