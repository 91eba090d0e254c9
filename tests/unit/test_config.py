"""Settings: defaults, environment names, refusal of unsafe values, and complete docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from ml_service.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(Settings.env_name(name), raising=False)
    monkeypatch.delenv("PORT", raising=False)
    settings = Settings()  # type: ignore[call-arg]
    assert settings.port == 8000
    assert settings.host == "127.0.0.1"
    assert settings.max_body_bytes == 1_048_576
    assert settings.max_rows == 10_000
    assert settings.workers >= 1


def test_port_comes_from_the_platform_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8181")
    monkeypatch.setenv("ML_SERVICE_MAX_ROWS", "5")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.port == 8181
    assert settings.max_rows == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "0"),
        ("PORT", "70000"),
        ("ML_SERVICE_MAX_BODY_BYTES", "10"),
        ("ML_SERVICE_MAX_BODY_BYTES", str(1 << 30)),
        ("ML_SERVICE_MAX_ROWS", "0"),
        ("ML_SERVICE_WORKERS", "0"),
        ("ML_SERVICE_WORKERS", "1000"),
        ("ML_SERVICE_LOG_LEVEL", "verbose"),
        ("ML_SERVICE_GRACEFUL_TIMEOUT", "-1"),
        ("ML_SERVICE_HEADER_TIMEOUT", "0"),
        ("ML_SERVICE_HEADER_TIMEOUT", "3600"),
        ("ML_SERVICE_BODY_TIMEOUT", "0.5"),
        ("ML_SERVICE_BODY_TIMEOUT", "3600"),
        ("ML_SERVICE_HOST", "0.0.0.0/0"),
        ("ML_SERVICE_OTLP_ENDPOINT", "ftp://collector"),
    ],
)
def test_unsafe_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()  # type: ignore[call-arg]


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|", text, re.MULTILINE)}
    expected = {Settings.env_name(name) for name in Settings.model_fields}
    assert expected <= table, f"undocumented: {sorted(expected - table)}"
    assert table <= expected | {"PROMETHEUS_MULTIPROC_DIR"}, f"stale: {sorted(table - expected)}"
