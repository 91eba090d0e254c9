"""Harness for offline tests of deployment scripts: fake commands first on PATH, a scenario of
answers, a log of every call (see ``stubs/stub.py`` for the scenario format).

Typical use in a test::

    env = StubEnv(tmp_path, commands=("az", "curl", "kubectl"))
    env.scenario(rules)                        # list of rule dicts
    result = env.run(SCRIPTS / "provision.sh")
    assert env.commands("az")[0] == "group show"

Scripts run with a clean environment: PATH (stubs first), HOME and TMPDIR under tmp_path, the
STUB_* variables and whatever ``env=`` adds. State (flags, counters) persists between runs of
one StubEnv, so a second run sees what the first one created.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

STUB = Path(__file__).resolve().parent / "stubs" / "stub.py"
REPO = Path(__file__).resolve().parents[2]


class StubEnv:
    """A directory of stub commands plus their scenario, state and call log."""

    def __init__(self, root: Path, commands: Iterable[str] = ("az", "curl", "ml-service")) -> None:
        self.root = root
        self.bin = root / "stub-bin"
        self.state = root / "stub-state"
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.log = root / "stub-calls.jsonl"
        self.scenario_file = root / "stub-scenario.json"
        for path in (self.bin, self.state, self.home, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        for name in commands:
            self.add_command(name)
        self.scenario([])

    def add_command(self, name: str) -> Path:
        """Put a stub named `name` on the stub PATH."""
        path = self.bin / name
        path.write_text(
            f'#!/bin/sh\nSTUB_CMD={name} exec "{sys.executable}" "{STUB}" "$@"\n',
            encoding="utf-8",
        )
        path.chmod(0o755)
        return path

    def scenario(self, rules: Sequence[Mapping[str, Any]]) -> None:
        """Replace the scenario's rules (state and log are kept)."""
        self.scenario_file.write_text(json.dumps({"rules": list(rules)}, indent=1))

    def set_flags(self, *flags: str) -> None:
        """Mark state flags as set, e.g. to start from resources that already exist."""
        for flag in flags:
            (self.state / f"flag.{flag}").touch()

    def flags(self) -> set[str]:
        """The state flags currently set."""
        return {p.name[5:] for p in self.state.glob("flag.*")}

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment scripts run with."""
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "STUB_SCENARIO": str(self.scenario_file),
            "STUB_STATE": str(self.state),
            "STUB_LOG": str(self.log),
            "STUB_HASH_ENV": "ML_SERVICE_API_KEY",
        }
        env.update(extra or {})
        return env

    def run(
        self,
        script: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `script` with the stubs first on PATH; never raises on a non-zero exit."""
        return subprocess.run(
            ["bash", str(script), *args],
            env=self.environ(env),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or REPO,
            check=False,
        )

    def entries(self) -> list[dict[str, Any]]:
        """Every recorded call, oldest first."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def log_text(self) -> str:
        """The raw call log ("" before the first call), e.g. to search it for secrets."""
        return self.log.read_text() if self.log.exists() else ""

    def calls(self, cmd: str | None = None) -> list[list[str]]:
        """The argv of every recorded call (of `cmd` only, when given)."""
        return [e["argv"] for e in self.entries() if cmd is None or e["cmd"] == cmd]

    def commands(self, cmd: str = "az") -> list[str]:
        """Each call of `cmd` reduced to its command words (argv up to the first option)."""
        out = []
        for argv in self.calls(cmd):
            words = []
            for arg in argv:
                if arg.startswith("-"):
                    break
                words.append(arg)
            out.append(" ".join(words))
        return out

    def clear_log(self) -> None:
        """Forget the recorded calls (state is kept), e.g. between a first run and a re-run."""
        self.log.unlink(missing_ok=True)


def option(argv: Sequence[str], flag: str) -> str | None:
    """The value following `flag` in `argv`, or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None
