#!/usr/bin/env python3
"""Command stub for offline tests of deployment scripts: stands in for `az`, `curl`, `kubectl`,
`ml-service` or any other command, records every call and answers from a scenario file.

How to use it
-------------
1. Make a directory of commands named after the ones to fake, each running this file, and put
   it first on PATH (``tests/deploy/stubkit.py`` does all of this: ``StubEnv``). Either links
   (the command name is then taken from argv[0]) or wrappers that name it in ``STUB_CMD``::

       ln -s /path/to/stub.py bin/az
       printf '#!/bin/sh\nSTUB_CMD=kubectl exec python3 /path/to/stub.py "$@"\n' >bin/kubectl

2. Point the stub at its files through the environment:

   ``STUB_SCENARIO``  JSON file ``{"rules": [RULE, ...]}`` (required)
   ``STUB_LOG``       JSON-lines file; one ``{"cmd": "az", "argv": [...], ...}`` line per call
   ``STUB_STATE``     directory holding the scenario's state (flags and rule use counters), so
                      that a second run of a script sees what the first one "created"
   ``STUB_HASH_ENV``  comma-separated names of environment variables whose SHA-256 (never the
                      value) each call records under ``env_sha256``, e.g. an API key a script
                      passes to a command through its environment

3. A call is answered by the first RULE that matches it. A RULE is an object with:

   matching   ``cmd`` (command name, required); ``args`` (argv must start with these tokens);
              ``contains`` (tokens that must each appear in argv); ``lacks`` (tokens that must
              not appear, e.g. ``--slot``); ``options`` ({flag: value}:
              argv must hold ``flag value`` or ``flag=value``); ``if`` / ``unless`` (state
              flags that must all be set / must all be unset); ``times`` (the rule answers at
              most this many calls, then is skipped; counted in STUB_STATE)
              ``if_keyed`` (option flags, e.g. ``["--assignee", "--role", "--scope"]``: the
              state must hold the keyed flag a ``sets_keyed`` rule made from the same values)
   effects    ``sets`` / ``clears`` (state flags to set / clear when the rule answers);
              ``sets_keyed`` (option flags whose values, in order, name a flag to set: how a
              stub remembers one role assignment among many)
   answer     ``json`` (any JSON value, printed like the Azure CLI prints it: ``--query`` with
              a small JMESPath subset, then ``-o json|tsv|none``); ``stdout`` (raw text);
              ``stderr`` (raw text); ``exit`` (exit status, default 0); ``read_stdin`` (true:
              read stdin and record its SHA-256 and length, never its content, in the log);
              ``write`` ({"option": "--output", "base64": "..."}: write these bytes to the file
              named by that option, as `curl --output FILE` would)

   A call no rule matches exits 97 with ``stub: no rule for ...`` on stderr, so a test notices
   unplanned commands at once.

The JMESPath subset: ``a.b``, ``a[0]``, projections ``a[]`` / ``a[].b``, filters
``[?k=='v']`` (also ``!=``), multiselect lists ``[a, b.c]`` and ``length(expr)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

NO_RULE_EXIT = 97


def _split_top(expr: str, sep: str) -> list[str]:
    """Split `expr` on `sep` outside brackets, parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current = ""
    for ch in expr:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'`\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def _segments(expr: str) -> list[str]:
    """Break a dotted expression into key, index, projection and filter segments."""
    out: list[str] = []
    for part in _split_top(expr, "."):
        match = re.fullmatch(r"([A-Za-z_][\w-]*)?((?:\[[^\]]*\])*)", part)
        if part.startswith("[") and "," in part and not part.startswith("[?"):
            out.append(part)
            continue
        if not match:
            raise ValueError(f"unsupported query segment {part!r}")
        key, brackets = match.group(1), match.group(2)
        if key:
            out.append(key)
        out.extend(re.findall(r"\[[^\]]*\]", brackets))
    return out


def _literal(text: str) -> Any:
    text = text.strip()
    if text[:1] in "'`\"" and text[-1:] == text[:1]:
        inner = text[1:-1]
        return json.loads(inner) if text[0] == "`" else inner
    return json.loads(text)


def query(data: Any, expr: str) -> Any:
    """Evaluate a small JMESPath subset (see the module docstring) against `data`."""
    expr = expr.strip()
    if expr in ("", "@"):
        return data
    fn = re.fullmatch(r"length\((.*)\)", expr)
    if fn:
        inner = query(data, fn.group(1))
        return None if inner is None else len(inner)
    return _apply(data, _segments(expr))


def _apply(value: Any, segs: list[str]) -> Any:
    if not segs or value is None:
        return value
    seg, rest = segs[0], segs[1:]
    if seg == "[]":
        items = value if isinstance(value, list) else []
        projected = [_apply(v, rest) for v in items]
        return [v for v in projected if v is not None]
    if seg.startswith("[?"):
        cond = seg[2:-1]
        op = "!=" if "!=" in cond else "=="
        left, right = (s.strip() for s in cond.split(op, 1))
        want = _literal(right)
        items = value if isinstance(value, list) else []
        kept = [v for v in items if (query(v, left) == want) == (op == "==")]
        projected = [_apply(v, rest) for v in kept]
        return [v for v in projected if v is not None]
    if seg.startswith("[") and seg[1:-1].lstrip("-").isdigit():
        if not isinstance(value, list):
            return None
        idx = int(seg[1:-1])
        return _apply(value[idx], rest) if -len(value) <= idx < len(value) else None
    if seg.startswith("["):
        return _apply([query(value, e) for e in _split_top(seg[1:-1], ",")], rest)
    if isinstance(value, dict):
        return _apply(value.get(seg), rest)
    return None


def _tsv_cell(value: Any) -> str:
    """One TSV cell as knack writes it: a list prints its length, a dict nothing, null None."""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return str(value)


def _tsv_row(row: Any) -> str:
    if isinstance(row, dict):
        return "\t".join(_tsv_cell(v) for _, v in sorted(row.items()))
    if isinstance(row, list):
        return "\t".join(_tsv_cell(v) for v in row)
    if isinstance(row, bool):
        return str(row).lower()
    return _tsv_cell(row)


def render(value: Any, argv: list[str]) -> str:
    """Print `value` as the Azure CLI would, honouring `--query` and `-o/--output`."""
    expr = _option(argv, "--query")
    if expr is not None:
        value = query(value, expr)
    fmt = _option(argv, "-o") or _option(argv, "--output") or "json"
    if fmt == "none":
        return ""
    if fmt == "tsv":
        if value is None:
            return ""
        # A top-level list prints one row per item: `--query "[a, b]"` gives two lines.
        rows = value if isinstance(value, list) else [value]
        return "".join(_tsv_row(row) + "\n" for row in rows)
    if value is None:
        return ""
    return json.dumps(value, indent=2) + "\n"


def _option(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


def _keyed(argv: list[str], flags: list[str]) -> str:
    values = json.dumps([_option(argv, f) for f in flags])
    return "keyed." + hashlib.sha256(values.encode()).hexdigest()[:16]


def _matches(rule: dict[str, Any], cmd: str, argv: list[str], state: Path, index: int) -> bool:
    if rule.get("cmd") != cmd:
        return False
    prefix = rule.get("args", [])
    if argv[: len(prefix)] != prefix:
        return False
    if any(tok not in argv for tok in rule.get("contains", [])):
        return False
    if any(tok in argv for tok in rule.get("lacks", [])):
        return False
    for flag, want in rule.get("options", {}).items():
        if _option(argv, flag) != want:
            return False
    if any(not (state / f"flag.{f}").exists() for f in rule.get("if", [])):
        return False
    if any((state / f"flag.{f}").exists() for f in rule.get("unless", [])):
        return False
    if "if_keyed" in rule and not (state / f"flag.{_keyed(argv, rule['if_keyed'])}").exists():
        return False
    times = rule.get("times")
    return times is None or _count(state, index) < int(times)


def _count(state: Path, index: int) -> int:
    path = state / f"count.{index}"
    return int(path.read_text()) if path.exists() else 0


def main() -> int:
    """Answer one call: match a rule, apply its effects, log the call, print the answer."""
    cmd = os.environ.get("STUB_CMD") or Path(sys.argv[0]).name
    argv = sys.argv[1:]
    scenario = json.loads(Path(os.environ["STUB_SCENARIO"]).read_text())
    state = Path(os.environ.get("STUB_STATE") or Path(os.environ["STUB_SCENARIO"]).parent)
    state.mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {"cmd": cmd, "argv": argv}
    hashed = [n for n in os.environ.get("STUB_HASH_ENV", "").split(",") if n in os.environ]
    if hashed:
        entry["env_sha256"] = {
            n: hashlib.sha256(os.environ[n].encode()).hexdigest() for n in hashed
        }
    chosen: dict[str, Any] | None = None
    for index, rule in enumerate(scenario.get("rules", [])):
        if _matches(rule, cmd, argv, state, index):
            chosen = rule
            (state / f"count.{index}").write_text(str(_count(state, index) + 1))
            entry["rule"] = index
            break
    if chosen is not None and chosen.get("read_stdin"):
        data = sys.stdin.buffer.read()
        entry["stdin_sha256"] = hashlib.sha256(data).hexdigest()
        entry["stdin_len"] = len(data)
    log = os.environ.get("STUB_LOG")
    if log:
        with Path(log).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    if chosen is None:
        sys.stderr.write(f"stub: no rule for {cmd} {' '.join(argv)}\n")
        return NO_RULE_EXIT
    for flag in chosen.get("sets", []):
        (state / f"flag.{flag}").touch()
    for flag in chosen.get("clears", []):
        (state / f"flag.{flag}").unlink(missing_ok=True)
    if "sets_keyed" in chosen:
        (state / f"flag.{_keyed(argv, chosen['sets_keyed'])}").touch()
    write = chosen.get("write")
    if write:
        target = _option(argv, write["option"])
        if target is None:
            sys.stderr.write(f"stub: {cmd} called without {write['option']}\n")
            return NO_RULE_EXIT
        Path(target).write_bytes(base64.b64decode(write["base64"]))
    if "json" in chosen:
        sys.stdout.write(render(chosen["json"], argv))
    sys.stdout.write(chosen.get("stdout", ""))
    sys.stderr.write(chosen.get("stderr", ""))
    return int(chosen.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
