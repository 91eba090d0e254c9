"""The strict JSON reader: every 400 rule of the contract, and what must still pass."""

from __future__ import annotations

import json
import math

import pytest

from ml_service.errors import MalformedJSON
from ml_service.http.jsonbody import MAX_DEPTH, parse_json


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"RM": NaN}', "NaN is not valid JSON"),
        (b'{"RM": Infinity}', "Infinity is not valid JSON"),
        (b'{"RM": -Infinity}', "-Infinity is not valid JSON"),
        (b'\xef\xbb\xbf{"RM": 1}', "byte-order mark"),
        (b'{"RM": "\\ud800"}', "lone surrogate"),
        (b'{"\\udc00": 1}', "lone surrogate"),
        (b'{"RM": 1, "RM": 2}', "duplicate key 'RM'"),
        (b'{"RM": {"0": 1, "0": 2}}', "duplicate key '0'"),
        (b'{"a:b": 1, "a:b": 2}', "duplicate key 'a:b'"),
        (b'{"RM\\u0022": 1, "RM\\"": 2}', "duplicate key"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "deeper than 32"),
        (b"[" * 100_000, "deeper than 32"),
        (b'{"RM": [1, 2}', "not valid JSON"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b"{'RM': 1}", "not valid JSON"),
    ],
)
def test_rejects_what_the_contract_calls_invalid(body: bytes, message: str) -> None:
    with pytest.raises(MalformedJSON, match=message.replace("(", r"\(")):
        parse_json(body)


def test_depth_limit_is_inclusive() -> None:
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(deepest) == json.loads(deepest)
    nested_objects = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert parse_json(nested_objects) is not None


@pytest.mark.parametrize(
    "body",
    [
        b'{"RM": {"0": 6.5}}',
        b'{"a:b": "c:d", "e": ["f:", {"g:": ":"}]}',
        b'{"k": "\\u00e9\\ud83d\\ude00", "l": "\\n"}',
        b'{"RM": [1, 2.5, -0, 1e-300]}',
        b'[{"a": 1}, {"a": 1}]',
    ],
)
def test_valid_json_reads_as_the_standard_library_reads_it(body: bytes) -> None:
    assert parse_json(body) == json.loads(body)


def test_numbers_too_large_for_a_double_become_infinite_for_the_schema_to_refuse() -> None:
    # Valid JSON grammar: the schema check (422), not the reader (400), refuses it.
    assert math.isinf(parse_json(b'{"RM": 1e400}')["RM"])
    assert parse_json(b'{"RM": 100000000000000000000000}')["RM"] == 1e23
