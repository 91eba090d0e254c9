"""The home page's shell in-process: public, the same bytes with keys on or off, no model data,
a strict policy, and the few settings the page needs before it asks the API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from tests.conftest import make_client

from ml_service.model.metrics import LABELS
from ml_service.model.schema import MISSING_TOKENS

KEY = "page-shell-key-0123456789"
DOCS_SCRIPT = Path(__file__).resolve().parents[2] / "src/ml_service/http/static/docs/start.js"


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="page-config">(.*?)</script>', html)
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def test_the_shell_is_public_and_the_same_with_keys_on(client: TestClient, model_dir: Path) -> None:
    open_page = client.get("/?model=housing")
    with make_client(model_dir, api_keys=KEY) as keyed:
        keyed_page = keyed.get("/")
        assert keyed.get("/static/app.js").status_code == 200
        assert keyed.get("/static/app.css").status_code == 200
        assert keyed.get("/v1/models").status_code == 401
    assert keyed_page.status_code == 200
    assert keyed_page.content == open_page.content


def test_the_shell_holds_no_model_data(client: TestClient) -> None:
    html = client.get("/").text
    card = client.get("/v1/models/housing").json()
    assert "<h3>Sklearn Prediction Home</h3>" in html
    assert card["version"] not in html
    assert card["description"] not in html
    for feature in card["features"]:
        assert f'"{feature["name"]}"' not in html
        assert feature["description"] not in html


def test_the_shell_has_a_strict_policy_and_no_inline_code(client: TestClient) -> None:
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "http" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    assert "style=" not in html
    assert re.findall(r"<script(?![^>]*(?:src=|application/json))", html) == []
    assert re.findall(r"\son[a-z]+=", html) == []
    assert re.findall(r"(?:src|href)=\"(?:https?:)?//", html) == []


def test_the_shell_carries_the_upload_limits_and_metric_names(model_dir: Path) -> None:
    with make_client(model_dir, max_rows=500, max_body_bytes=65536) as small:
        config = page_config(small.get("/").text)
    assert config["metricLabels"] == LABELS
    assert config["missing"] == list(MISSING_TOKENS)
    assert config["batch"]["rowsPerRequest"] == 500
    assert config["batch"]["bodyBytes"] == 65536
    assert config["batch"]["maxRows"] > config["batch"]["rowsPerRequest"]


def test_the_page_and_the_docs_keep_the_key_in_the_same_place(client: TestClient) -> None:
    config = page_config(client.get("/").text)
    assert f'"{config["keyStore"]}"' in DOCS_SCRIPT.read_text()
