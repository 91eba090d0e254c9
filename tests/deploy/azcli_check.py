"""Check `az` command lines against the real Azure CLI, offline and without an account.

Each line runs through the real CLI with a throwaway, logged-out configuration directory. The
CLI parses and validates the whole line before it needs credentials, so a valid line ends by
asking for ``az login``, while a misspelled command, an unknown flag or a value outside a
flag's choices is rejected with exit status 2 (``unrecognized arguments``, ``is not a valid
value``, ``is misspelled or not recognized``). Any other outcome is reported too.

Library use (any test can feed its recorded calls)::

    from azcli_check import check_lines
    failures = check_lines(az_path, [["group", "show", "--name", "rg"], ...])
    assert not failures, "\\n".join(str(f) for f in failures)

Command-line use, on stub logs (``STUB_LOG`` JSON lines, only ``"cmd": "az"`` entries are
checked) or text files of shell-quoted lines (``az`` prefix optional)::

    python tests/deploy/azcli_check.py --az .tools/azure-cli/bin/az calls.jsonl lines.txt

Accepted lines are remembered in ``--cache`` (default: beside the CLI) so re-runs only check
new lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

LOGIN = ("az login", "Please run 'az login'")
REJECTED = (
    "unrecognized arguments",
    "is not a valid value",
    "not a valid value",
    "is misspelled or not recognized",
    "the following arguments are required",
    "invalid choice",
)


@dataclass(frozen=True)
class Verdict:
    """What the real CLI said about one line."""

    argv: tuple[str, ...]
    accepted: bool
    status: int
    output: str

    def __str__(self) -> str:
        state = "accepted" if self.accepted else f"REJECTED (exit {self.status})"
        tail = self.output.strip().splitlines()[:3]
        return f"{state}: az {shlex.join(self.argv)}\n    " + "\n    ".join(tail)


def check_line(az: str, argv: Sequence[str], config_dir: Path, timeout: float = 120) -> Verdict:
    """Run one line through the real CLI, logged out; accepted when it asks for `az login`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config_dir),
        "AZURE_CONFIG_DIR": str(config_dir),
        "AZURE_CORE_COLLECT_TELEMETRY": "no",
        "AZURE_CORE_NO_COLOR": "true",
        "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
        "LANG": "C.UTF-8",
    }
    proc = subprocess.run(
        [az, *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stderr + proc.stdout
    rejected = proc.returncode == 2 or any(p in output for p in REJECTED)
    accepted = not rejected and proc.returncode != 0 and any(p in output for p in LOGIN)
    return Verdict(tuple(argv), accepted, proc.returncode, output)


def _key(az: str, argv: Sequence[str], normalize: Callable[[str], str]) -> str:
    words = [str(Path(az).resolve()), *(normalize(a) for a in argv)]
    return hashlib.sha256(json.dumps(words).encode()).hexdigest()


def _same(arg: str) -> str:
    return arg


def check_lines(
    az: str,
    lines: Iterable[Sequence[str]],
    cache: Path | None = None,
    workers: int = 4,
    normalize: Callable[[str], str] = _same,
) -> list[Verdict]:
    """Check every distinct line; return the verdicts of the lines not accepted.

    `normalize` maps each argument before it keys the cache (e.g. temporary paths to a fixed
    placeholder), so that lines differing only in such arguments are checked once.
    """
    unique = list(dict.fromkeys(tuple(line) for line in lines))
    known: set[str] = set()
    if cache is not None and cache.exists():
        known = set(json.loads(cache.read_text()))
    todo = [argv for argv in unique if _key(az, argv, normalize) not in known]
    with tempfile.TemporaryDirectory(prefix="azcli-check-") as tmp:
        config = Path(tmp)
        # One warm-up call builds the command index, so parallel calls do not race on it.
        if todo:
            check_line(az, ["version"], config)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            verdicts = list(pool.map(lambda a: check_line(az, a, config), todo))
    if cache is not None:
        known |= {_key(az, v.argv, normalize) for v in verdicts if v.accepted}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(sorted(known)))
    return [v for v in verdicts if not v.accepted]


def read_lines(path: Path) -> list[list[str]]:
    """`az` argv lists from a stub log (JSON lines) or a text file of shell-quoted lines."""
    out: list[list[str]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("cmd") == "az":
                out.append(list(entry["argv"]))
            continue
        argv = shlex.split(line)
        out.append(argv[1:] if argv[:1] == ["az"] else argv)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Check the lines of the given files; exit 1 when any is rejected."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--az", required=True, help="the real az executable")
    parser.add_argument("--cache", type=Path, help="file remembering accepted lines")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    lines = [line for path in args.files for line in read_lines(path)]
    cache = args.cache or Path(args.az).resolve().parent.parent / "checked-lines.json"
    failures = check_lines(args.az, lines, cache=cache, workers=args.workers)
    for verdict in failures:
        print(verdict, file=sys.stderr)
    print(f"azcli-check: {len(set(map(tuple, lines)))} distinct lines, {len(failures)} rejected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
