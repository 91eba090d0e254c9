"""Models with text columns, blank cells and text targets, served in-process: the three
dialects agree, refusals name every problem, classifiers answer labels and probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import Trained, make_client
from tests.support.repository import add_version

CHURN = "/v1/models/churn"


@pytest.fixture(scope="module")
def client(
    homes: Trained, churn: Trained, penguins: Trained, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    repository = tmp_path_factory.mktemp("mixed")
    for trained in (homes, churn, penguins):
        name = trained.result.schema.name
        add_version(trained.path, repository, "v1", name=name)
    with make_client(None, model_repository=repository) as test_client:
        yield test_client


def example(trained: Trained, **changes: Any) -> dict[str, Any]:
    schema = trained.result.schema
    row = {f.name: schema.examples[0].get(f.name) for f in schema.features}
    return {**row, **changes}


def three_ways(client: TestClient, name: str, rows: list[dict[str, Any]]) -> list[Any]:
    """The same rows through /v1, /v2 (one input per feature) and, for housing-like models,
    the answers' predictions and probabilities as each dialect gives them."""
    names = list(rows[0])
    metadata = client.get(f"/v2/models/{name}").json()
    datatypes = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    v1 = client.post(f"/v1/models/{name}:predict", json={"instances": rows})
    v1_lists = client.post(
        f"/v1/models/{name}:predict", json={"instances": [[r[n] for n in names] for r in rows]}
    )
    v2 = client.post(
        f"/v2/models/{name}/infer",
        json={
            "inputs": [
                {
                    "name": n,
                    "shape": [len(rows)],
                    "datatype": datatypes[n],
                    "data": [r[n] for r in rows],
                }
                for n in names
            ]
        },
    )
    for response in (v1, v1_lists, v2):
        assert response.status_code == 200, response.text
    return [v1.json(), v1_lists.json(), v2.json()]


def test_text_columns_and_blanks_give_one_answer_in_every_dialect(
    client: TestClient, homes: Trained
) -> None:
    nullable = [f.name for f in homes.result.schema.features if f.nullable]
    assert nullable, "the example has blank cells"
    rows = [example(homes), example(homes, **dict.fromkeys(nullable))]
    v1, v1_lists, v2 = three_ways(client, "homes", rows)
    assert v1["predictions"] == v1_lists["predictions"] == v2["outputs"][0]["data"]
    assert v1["predictions"][0] != v1["predictions"][1]


def test_a_classifier_answers_labels_and_probabilities_everywhere(
    client: TestClient, churn: Trained
) -> None:
    rows = [example(churn), example(churn, contract="two year", tenure=70)]
    v1, v1_lists, v2 = three_ways(client, "churn", rows)
    classes = list(churn.result.schema.target.classes or ())
    assert v1 == v1_lists
    assert set(v1["predictions"]) <= set(classes)
    for probabilities in v1["probabilities"]:
        assert list(probabilities) == [str(c) for c in classes]
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    outputs = {o["name"]: o for o in v2["outputs"]}
    assert outputs["predict"]["datatype"] == "BYTES"
    assert outputs["predict"]["data"] == v1["predictions"]
    proba = outputs["predict_proba"]
    assert proba["shape"] == [2, len(classes)]
    assert proba["parameters"]["classes"] == classes
    assert proba["data"] == [p for row in v1["probabilities"] for p in row.values()]
    original = client.post("/predict", json={n: [r[n] for r in rows] for n in rows[0]}, params={})
    assert original.status_code == 404, "several models and none the default"


def test_v2_outputs_can_ask_for_one_of_the_two(client: TestClient, churn: Trained) -> None:
    row = example(churn)
    metadata = client.get("/v2/models/churn").json()
    datatypes = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    inputs = [
        {"name": n, "shape": [1], "datatype": datatypes[n], "data": [v]} for n, v in row.items()
    ]
    only = client.post(
        "/v2/models/churn/infer", json={"inputs": inputs, "outputs": [{"name": "predict_proba"}]}
    )
    assert [o["name"] for o in only.json()["outputs"]] == ["predict_proba"]
    wrong = client.post(
        "/v2/models/churn/infer", json={"inputs": inputs, "outputs": [{"name": "score"}]}
    )
    assert wrong.status_code == 422
    assert wrong.json()["details"][0]["loc"] == ["outputs", 0, "name"]


def test_every_wrong_value_is_named_at_its_place(client: TestClient, churn: Trained) -> None:
    schema = churn.result.schema
    categorical = next(f for f in schema.features if f.categorical and not f.nullable)
    numeric = next(f for f in schema.features if not f.categorical and not f.nullable)
    bad = example(churn, **{categorical.name: "Unknown Value", numeric.name: "many"})
    nulls = example(churn, **{categorical.name: None, numeric.name: None})
    numbers = example(churn, **{categorical.name: 3})
    response = client.post(f"{CHURN}:predict", json={"instances": [bad, nulls, numbers]})
    assert response.status_code == 422
    messages = {tuple(d["loc"]): d["msg"] for d in response.json()["details"]}
    assert messages == {
        ("instances", 0, categorical.name): f"{categorical.name} must be "
        f"{categorical.describe_range()}, got 'Unknown Value'",
        ("instances", 0, numeric.name): "must be a number, got a string",
        ("instances", 1, categorical.name): f"{categorical.name} must be a string, "
        f"{categorical.describe_range()}; got null",
        ("instances", 1, numeric.name): "must be a number, got null",
        ("instances", 2, categorical.name): f"{categorical.name} must be a string, "
        f"{categorical.describe_range()}; got a number",
    }


def test_v2_takes_text_as_bytes_one_input_per_feature(client: TestClient, churn: Trained) -> None:
    row = example(churn)
    as_numbers = [
        {"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in row.items()
    ]
    response = client.post("/v2/models/churn/infer", json={"inputs": as_numbers})
    assert response.status_code == 422
    locs = [tuple(d["loc"]) for d in response.json()["details"]]
    text = [i for i, v in enumerate(row.values()) if isinstance(v, str)]
    assert locs == [("inputs", i, "datatype") for i in text]
    matrix = [{"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": list(row.values())}]
    response = client.post("/v2/models/churn/infer", json={"inputs": matrix})
    assert response.status_code == 422
    assert "send one input per feature" in response.json()["details"][0]["msg"]


def test_the_card_and_metadata_describe_kinds_and_classes(
    client: TestClient, penguins: Trained
) -> None:
    card = client.get("/v1/models/penguins").json()
    assert card["task"] == "classification"
    assert card["classes"] == list(penguins.result.schema.target.classes or ())
    by_name = {f["name"]: f for f in card["features"]}
    island = by_name["island"]
    assert island["kind"] == "categorical"
    assert island["categories"]
    assert island["min"] is None
    assert any(f["nullable"] for f in card["features"])
    metadata = client.get("/v2/models/penguins").json()
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]}["island"] == "BYTES"
    assert metadata["outputs"][1]["shape"] == [-1, 3]


def test_drift_watches_categories_and_missing_values(client: TestClient, churn: Trained) -> None:
    schema = churn.result.schema
    feature = next(f for f in schema.features if f.categorical and len(f.categories or ()) > 2)
    rows = [example(churn, **{feature.name: (feature.categories or ())[-1]})] * 150
    assert client.post(f"{CHURN}:predict", json={"instances": rows}).status_code == 200
    drift = client.get(CHURN).json()["drift"]
    assert drift["judged"]
    assert drift["features"][feature.name]["drifted"], drift["features"][feature.name]
    metrics = client.get("/metrics").text
    assert f'bin="missing",feature="{feature.name}",model="churn"' in metrics
