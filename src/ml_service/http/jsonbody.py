"""Strict JSON: what the contract calls valid, read fast.

orjson reads the body; it already refuses NaN/Infinity literals, a byte-order mark, lone
surrogates and invalid UTF-8. Two rules it does not enforce are checked after it: nesting depth
and duplicate keys. Duplicates are found by counting: without escapes, every `"` in the raw body
delimits a string, so the body holds exactly two quotes per object key and per string value of
the parsed tree, and any member orjson dropped as a duplicate shows as a difference. A small body
is counted by writing the parsed tree back (orjson writes two quotes per string, and with no
backslash in the body no string holds a quote) after counting its brackets, which bound its
depth. A larger one is walked (`_scan`), first without looking into long arrays: when the
containers found equal the body's `{` and `[` count and the strings found its quotes, the arrays
skipped hold nothing else to count, so long arrays of numbers are never walked element by
element; otherwise the walk is repeated over every element. Bodies with escapes, nesting beyond
the limit, or any doubt go through the exact reader (the standard library with hooks), which
also gives the precise message: both paths return the same value or raise the same error. One
difference is kept on purpose: orjson reads an integer beyond 64 bits (below -2**63 or above
2**64 - 1) as the nearest double, which is what the model receives either way.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import orjson

from ml_service.errors import MalformedJSON

MAX_DEPTH = 32
# Up to this size, writing the parsed value back is cheaper than walking it.
_REWRITE_BYTES = 4096
# Arrays up to this length are looked into on the first walk of a larger body.
_SHORT_ARRAY = 16
_BOM = b"\xef\xbb\xbf"
_SCALARS = frozenset({int, float, bool, type(None)})
# Past this many digits `int()` refuses to convert (CPython's integer string limit).
_INT_DIGITS = min(sys.get_int_max_str_digits() or 4300, 4300)


def parse_json(raw: bytes) -> Any:
    """The body's value, or `MalformedJSON` saying what is wrong."""
    if raw.startswith(_BOM):
        raise MalformedJSON("body starts with a byte-order mark; send UTF-8 JSON without one")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _parse_exact(raw)
    if b"\\" in raw:
        return _parse_exact(raw)
    quotes = raw.count(b'"')
    brackets = raw.count(b"{") + raw.count(b"[")
    if len(raw) <= _REWRITE_BYTES and brackets <= MAX_DEPTH:
        try:
            rewritten = orjson.dumps(value)
        except orjson.JSONEncodeError:
            return _parse_exact(raw)
        return value if rewritten.count(b'"') == quotes else _parse_exact(raw)
    containers, strings, depth = _scan(value, _SHORT_ARRAY)
    if containers != brackets or 2 * strings != quotes:
        containers, strings, depth = _scan(value, None)
    if depth > MAX_DEPTH or quotes != 2 * strings:
        return _parse_exact(raw)
    return value


def _scan(value: Any, short: int | None) -> tuple[int, int, int]:
    """(containers, strings, nesting depth) of a parsed value; strings counts object keys too.

    Arrays longer than `short` (when given) are counted but not looked into: the containers and
    strings inside them are not counted. Stops early, returning a depth over the limit, as soon
    as one container is nested too deep.
    """
    if type(value) is str:
        return 0, 1, 0
    containers = strings = depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, level = pop()
        if type(node) is dict:
            strings += len(node)
            children: Any = node.values()
        elif type(node) is list:
            if short is not None and len(node) > short:
                containers += 1
                depth = max(depth, level)
                continue
            children = node
        else:
            continue
        containers += 1
        if level > depth:
            depth = level
            if level > MAX_DEPTH:
                break
        if set(map(type, children)) <= _SCALARS:
            continue
        for child in children:
            kind = type(child)
            if kind is str:
                strings += 1
            elif kind is dict or kind is list:
                push((child, level + 1))
    return containers, strings, depth


def _parse_exact(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON(f"body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise MalformedJSON("body is empty; send a JSON object")
    try:
        value = json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_int=_integer
        )
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedJSON(f"body nests deeper than {MAX_DEPTH} levels") from None
    _check_tree(value)
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJSON(f"duplicate key {key!r} in one object; send each key once")
        result[key] = value
    return result


def _integer(digits: str) -> int | float:
    """An integer literal; one too long for Python to convert is beyond any double anyway, so
    it reads as an infinity (which the value checks refuse as too large for a double)."""
    if len(digits) > _INT_DIGITS:
        return -math.inf if digits.startswith("-") else math.inf
    return int(digits)


def _constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not valid JSON; send finite numbers")


def _check_tree(value: Any) -> None:
    """Depth limit and lone surrogates, which the standard library lets through."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            _check_text(node)
            continue
        if not isinstance(node, dict | list):
            continue
        if level > MAX_DEPTH:
            raise MalformedJSON(f"body nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key in node:
                _check_text(key)
            stack.extend((child, level + 1) for child in node.values())
        else:
            stack.extend((child, level + 1) for child in node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJSON(
            "body has a lone surrogate escape (\\ud800-\\udfff) in a string"
        ) from None
