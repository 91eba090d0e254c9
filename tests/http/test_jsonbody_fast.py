"""The fast JSON path (orjson and the counting checks) reads every body as the exact reader does.

Each body is read as it is and padded with trailing whitespace, so both ways of finding
duplicate keys (writing a small value back, walking a large one) are compared. The reference is
the exact reader of api/jsonbody.py (the standard library with hooks) after the
byte-order-mark rule: for random bodies, including duplicate keys, escapes, colons and quotes in
strings, deep nesting and damaged bytes, both give the same value (same types too) or the same
`MalformedJSON` message. One difference is documented: an integer beyond 64 bits reads as the
nearest double on the fast path (the model receives that double either way).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_service.errors import MalformedJSON
from ml_service.http import jsonbody

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


def outcome(read: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", canonical(read(raw))
    except MalformedJSON as exc:
        return "error", exc.message


def reference(raw: bytes) -> Any:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise MalformedJSON("body starts with a byte-order mark; send UTF-8 JSON without one")
    return jsonbody._parse_exact(raw)


def canonical(value: Any) -> Any:
    """The value with its types spelled out (1 and 1.0 differ), big integers as doubles."""
    if type(value) is dict:
        return ("object", [(k, canonical(v)) for k, v in value.items()])
    if type(value) is list:
        return ("array", [canonical(v) for v in value])
    if type(value) is int and not INT64_MIN <= value <= UINT64_MAX:
        return ("float", float(value).hex())
    if type(value) is float:
        return ("float", value.hex())
    return (type(value).__name__, value)


def assert_same(raw: bytes) -> None:
    """Same outcome for the body as it is and padded past the size where the fast path
    stops writing the value back and walks it instead."""
    padded = raw + b" " * (jsonbody._REWRITE_BYTES + 1)
    for body in (raw, padded):
        assert outcome(jsonbody.parse_json, body) == outcome(reference, body), body[:300]


# Keys and strings that stress the counting checks: colons, quotes, backslashes, unicode.
texts = st.text(alphabet=st.sampled_from([*'ab:"\\/ é😀\n\t{}[],', "\x00", "\ud800"]), max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)


@st.composite
def documents(draw: st.DrawFn, max_leaves: int = 30) -> str:
    """JSON text whose objects may repeat keys, with random escaping and whitespace."""
    tree = draw(
        st.recursive(
            scalars,
            lambda children: st.one_of(
                st.lists(children, max_size=4),
                st.lists(st.tuples(texts, children), max_size=4),  # object as pairs
            ),
            max_leaves=max_leaves,
        )
    )
    ascii_only = draw(st.booleans())
    space = draw(st.sampled_from(["", " ", "\n", "\t "]))
    return render(tree, ascii_only, space)


def render(node: Any, ascii_only: bool, space: str) -> str:
    if isinstance(node, list) and node and all(isinstance(p, tuple) for p in node):
        members = (
            f"{json.dumps(k, ensure_ascii=ascii_only)}{space}:{space}{render(v, ascii_only, space)}"
            for k, v in node
        )
        return "{" + f",{space}".join(members) + "}"
    if isinstance(node, list):
        return "[" + f",{space}".join(render(v, ascii_only, space) for v in node) + "]"
    if isinstance(node, tuple):  # an object with one member drawn as a bare pair
        return render([node], ascii_only, space)
    return json.dumps(node, ensure_ascii=ascii_only)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@SETTINGS
@given(documents())
def test_random_documents_read_the_same(text: str) -> None:
    assert_same(encode(text))


@SETTINGS
@given(
    st.one_of(documents(), st.integers(28, 36).map(lambda n: "[" * n + "]" * n)),
    st.integers(0, 40),
    st.booleans(),
)
def test_documents_inside_long_arrays_read_the_same(text: str, at: int, nested: bool) -> None:
    """A large body's first walk skips long arrays; what they hide (duplicate keys, strings,
    brackets, deep nesting) must still be found."""
    numbers = [str(i) for i in range(40)]
    numbers.insert(at, text)
    inner = "[" + ",".join(numbers) + "]"
    body = '{"a": {"b": ' + inner + "}}" if nested else '{"data": ' + inner + ', "n": 1}'
    assert_same(encode(body))


@SETTINGS
@given(documents(max_leaves=8), st.data())
def test_damaged_documents_fail_or_read_the_same(text: str, data: st.DataObject) -> None:
    raw = bytearray(encode(text))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from([*b'{}[]":,\\0 e-.', 0xEF, 0xBB, 0xBF, 0xFF, 0xC3, 0x80]))
        if action == "insert":
            raw.insert(at, byte)
        elif raw and at < len(raw):
            if action == "delete":
                del raw[at]
            else:
                raw[at] = byte
    assert_same(bytes(raw))


@SETTINGS
@given(
    st.integers(1, jsonbody.MAX_DEPTH + 3),
    st.lists(st.sampled_from(["list", "object"]), min_size=1, max_size=1),
    st.booleans(),
)
def test_nesting_around_the_limit(depth: int, kinds: list[str], duplicate: bool) -> None:
    opening = '{"k":' if kinds[0] == "object" else "["
    closing = "}" if kinds[0] == "object" else "]"
    inner = '{"a":1,"a":2}' if duplicate else '{"a":1}'
    assert_same(encode(opening * depth + inner + closing * depth))


@SETTINGS
@given(st.lists(st.sampled_from(["a", "a:", ":", 'a"', "é"]), min_size=1, max_size=6))
def test_duplicate_keys_are_always_found(keys: list[str]) -> None:
    text = "{" + ",".join(f"{json.dumps(k)}:{i}" for i, k in enumerate(keys)) + "}"
    assert_same(encode(text))
    if len(set(keys)) < len(keys):
        assert outcome(jsonbody.parse_json, encode(text))[0] == "error"


@SETTINGS
@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_integers_of_any_size(number: int) -> None:
    assert_same(encode(f'{{"RM": {number}, "v": [{number}]}}'))


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["r", "e", "E"]))
def test_floats_read_to_the_same_double(number: float, style: str) -> None:
    literal = repr(number) if style == "r" else f"{number:.17{style}}"
    assert_same(encode(f"[{literal}]"))


def test_the_documented_difference_is_the_only_one() -> None:
    raw = b'{"RM": 100000000000000000000000}'
    assert jsonbody.parse_json(raw)["RM"] == 1e23
    assert jsonbody._parse_exact(raw)["RM"] == 10**23
