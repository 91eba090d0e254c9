"""The original app's load profile: users POST the sample request to /predict, 3-7 s apart.

Users, spawn rate and the p95 budget are in original.conf; loadtest/run.sh sets the host and
run time.
"""

from __future__ import annotations

import json

from common import REQUEST_TIMEOUT_S, sample_body
from locust import FastHttpUser, between, task

HEADERS = {"Content-Type": "application/json"}


class OriginalUser(FastHttpUser):
    """One client of the original app."""

    wait_time = between(3, 7)
    network_timeout = REQUEST_TIMEOUT_S
    connection_timeout = REQUEST_TIMEOUT_S
    body = sample_body()

    @task
    def predict(self) -> None:
        """POST the sample; a 200 with one prediction passes."""
        with self.client.post(
            "/predict", data=self.body, headers=HEADERS, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
                return
            prediction = json.loads(response.content or b"{}").get("prediction")
            if not isinstance(prediction, list) or len(prediction) != 1:
                response.failure(f"unexpected body: {response.text[:200]}")
