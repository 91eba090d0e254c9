"""The heavy load profile: no waits, all three dialects, single rows and batches.

Each user reads the model's feature names from `GET /v1/models/<name>` once, takes rows from the
training data, and then sends, without pausing, a mix of original `/predict`, KServe V1
`:predict` and V2 `/infer` requests of 1 or BATCH rows, checking every answer's row count.
Users, spawn rate and the p95 budget are in heavy.conf.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from common import MODEL_NAME, REQUEST_TIMEOUT_S, load_rows, original_body, v1_body, v2_body
from locust import FastHttpUser, constant, task

BATCH = 100
HEADERS = {"Content-Type": "application/json"}
Body = Callable[[list[str], list[list[float]]], bytes]


class HeavyUser(FastHttpUser):
    """A client that never waits and mixes every dialect and batch size."""

    wait_time = constant(0)
    network_timeout = REQUEST_TIMEOUT_S
    connection_timeout = REQUEST_TIMEOUT_S
    features: list[str]
    rows: list[list[float]]

    def on_start(self) -> None:
        """Learn the model's features from its card, then load matching rows."""
        response = self.client.get(f"/v1/models/{MODEL_NAME}", name="/v1/models/[name]")
        response.raise_for_status()
        self.features = [feature["name"] for feature in json.loads(response.content)["features"]]
        self.rows = load_rows(self.features)

    def _send(self, path: str, body: Body, size: int, key: str, dialect: str) -> None:
        rows = random.sample(self.rows, size)
        name = f"{dialect} [{'1 row' if size == 1 else f'{size} rows'}]"
        with self.client.post(
            path,
            data=body(self.features, rows),
            headers=HEADERS,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            answer = json.loads(response.content or b"{}")
            values = answer["outputs"][0]["data"] if key == "outputs" else answer.get(key)
            if not isinstance(values, list) or len(values) != size:
                response.failure(f"expected {size} predictions: {response.text[:200]}")

    @task(3)
    def original_single(self) -> None:
        """Original dialect, one row."""
        self._send("/predict", original_body, 1, "prediction", "/predict")

    @task(1)
    def original_batch(self) -> None:
        """Original dialect, a batch."""
        self._send("/predict", original_body, BATCH, "prediction", "/predict")

    @task(3)
    def v1_single(self) -> None:
        """KServe V1, one instance."""
        path = f"/v1/models/{MODEL_NAME}:predict"
        self._send(path, v1_body, 1, "predictions", "/v1 :predict")

    @task(1)
    def v1_batch(self) -> None:
        """KServe V1, a batch."""
        path = f"/v1/models/{MODEL_NAME}:predict"
        self._send(path, v1_body, BATCH, "predictions", "/v1 :predict")

    @task(3)
    def v2_single(self) -> None:
        """V2 inference, a [1, F] tensor."""
        path = f"/v2/models/{MODEL_NAME}/infer"
        self._send(path, v2_body, 1, "outputs", "/v2 infer")

    @task(1)
    def v2_batch(self) -> None:
        """V2 inference, a [BATCH, F] tensor."""
        path = f"/v2/models/{MODEL_NAME}/infer"
        self._send(path, v2_body, BATCH, "outputs", "/v2 infer")
