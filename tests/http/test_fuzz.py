"""Fuzzing: whatever a client sends, the answer is a well-formed JSON body and never a 5xx.

Two fuzzers: hypothesis throws arbitrary JSON values and raw bytes at the strict reader and at
every codec's endpoint; schemathesis generates requests from the service's own OpenAPI document
and checks that every answer is documented (status, content type, body schema).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient
from tests.conftest import make_client

from ml_service.errors import MalformedJSON, ServiceError
from ml_service.http.codecs import CODECS
from ml_service.http.codecs.base import Limits
from ml_service.http.jsonbody import parse_json
from ml_service.model.checks import Checker
from ml_service.model.schema import ModelSchema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ModelSchema.from_dict(json.loads((ROOT / "data" / "housing.schema.json").read_text()))
NAMES = list(SCHEMA.names)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**4000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from([*NAMES, "FP64", "BYTES", "INT8", "instances", "inputs", "shape", "data"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(
            st.one_of(
                st.sampled_from([*NAMES, "name", "shape", "datatype", "data", "0"]),
                st.text(max_size=4),
            ),
            children,
            max_size=6,
        ),
    ),
    max_leaves=40,
)


@st.composite
def near_requests(draw: st.DrawFn) -> Any:
    """Bodies shaped like each dialect's, with parts replaced by anything."""
    row = {n: draw(st.one_of(st.floats(0.1, 99), values)) for n in NAMES}
    kind = draw(st.sampled_from(["original", "v1", "v2", "v2-features", "any"]))
    if kind == "original":
        return {n: draw(st.one_of(st.just({"0": v}), st.just([v]), values)) for n, v in row.items()}
    if kind == "v1":
        return {
            draw(st.sampled_from(["instances", "inputs"])): draw(
                st.one_of(st.just([row]), st.just([list(row.values())]), values)
            )
        }
    if kind == "v2":
        return {
            "inputs": [
                {
                    "name": draw(st.one_of(st.just("x"), values)),
                    "shape": draw(
                        st.one_of(st.just([1, 6]), st.lists(st.integers(-2, 7), max_size=4))
                    ),
                    "datatype": draw(
                        st.one_of(st.sampled_from(["FP64", "INT8", "BYTES", "BOOL"]), values)
                    ),
                    "data": draw(st.one_of(st.just(list(row.values())), values)),
                }
            ]
        }
    if kind == "v2-features":
        return {
            "inputs": [
                {
                    "name": n,
                    "shape": [1],
                    "datatype": draw(st.sampled_from(["FP32", "UINT8", "BYTES"])),
                    "data": [v],
                }
                for n, v in row.items()
            ]
        }
    return draw(values)


@FUZZ
@given(st.one_of(st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode())))
def test_the_strict_reader_returns_a_value_or_malformed_json(raw: bytes) -> None:
    error: MalformedJSON | None = None
    try:
        parse_json(raw)
    except MalformedJSON as exc:
        error = exc
    if error is not None:
        assert error.status == 400
        assert error.message


@FUZZ
@given(near_requests(), st.integers(1, 3))
def test_every_codec_decodes_or_raises_a_service_error(body: Any, max_rows: int) -> None:
    checker = Checker(SCHEMA)
    for codec in CODECS:
        error: ServiceError | None = None
        try:
            rows, _ = codec.decode(body, checker, Limits(max_rows, 5))
        except ServiceError as exc:
            error = exc
        if error is None:
            assert rows.shape[1] == len(NAMES)
            assert 0 < rows.shape[0] <= max_rows
            continue
        assert error.status in (413, 422), error
        assert len(error.details) <= 5
        for problem in error.details:
            assert isinstance(problem.msg, str)
            assert problem.msg
            assert len(problem.msg) < 600


@pytest.fixture(scope="module")
def app_client(model_dir: Path) -> Iterator[TestClient]:
    with make_client(model_dir, max_error_details=10) as test_client:
        yield test_client


PATHS = ["/predict", "/v1/models/housing:predict", "/v2/models/housing/infer"]


@FUZZ
@given(body=st.one_of(near_requests(), values), path=st.sampled_from(PATHS))
def test_endpoints_answer_every_body_with_a_documented_status(
    app_client: TestClient, body: Any, path: str
) -> None:
    response = app_client.post(path, content=json.dumps(body))
    assert response.status_code in (200, 400, 413, 422), response.text
    answer = response.json()
    if response.status_code != 200:
        assert set(answer) <= {"error", "details"}
        assert isinstance(answer["error"], str)
        assert len(answer.get("details", [])) <= 10


@FUZZ
@given(raw=st.binary(max_size=300), path=st.sampled_from(PATHS))
def test_endpoints_answer_raw_bytes_with_400_or_better(
    app_client: TestClient, raw: bytes, path: str
) -> None:
    response = app_client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (200, 400, 413, 422), response.text
    assert "error" in response.json() or response.status_code == 200


def test_the_openapi_document_describes_every_answer(app_client: TestClient) -> None:
    """Every operation of /openapi.json, fuzzed from its own description by schemathesis."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app_client.app)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(checks=checks)

        run()
