"""Settings: every knob of the service, read once from the environment.

Each field's environment variable is `ML_SERVICE_<FIELD>` except `PORT`, which keeps the name
App Service, Kubernetes and most platforms pass. Values outside the documented bounds are
refused at start-up rather than silently clamped. The README's configuration table lists every
field (a test keeps the two in step).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ML_SERVICE_"
# prometheus_client reads this when first imported: every worker must see it set by then.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_MODEL_DIR = Path("models/housing")


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Typed, validated configuration of one ml-service process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    port: int = Field(
        8000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("PORT", "ML_SERVICE_PORT"),
        description="TCP port to listen on.",
    )
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to bind; set 0.0.0.0 inside containers and on App Service.",
    )
    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="Model artifact directory to serve.")
    workers: int = Field(
        default_factory=_default_workers,
        ge=1,
        le=64,
        description="Worker processes (default: one per CPU core).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged; `info` logs every request, predictions in detail."
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        description="Largest request body accepted, in bytes (chunked bodies included).",
    )
    max_rows: int = Field(10_000, ge=1, le=1_000_000, description="Most rows in one request.")
    graceful_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds in-flight requests get to finish on SIGTERM."
    )
    keepalive_timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds an idle keep-alive connection stays open."
    )
    drift_window: int = Field(
        1000, ge=10, le=1_000_000, description="Recent input rows kept per worker for drift."
    )
    drift_threshold: float = Field(
        0.2, gt=0, le=10, description="Population stability index above which drift is flagged."
    )
    metrics_dir: Path | None = Field(
        None,
        description="Directory for multi-process Prometheus metrics (default: a fresh temp dir).",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces; tracing is off when unset."
    )
    docs: bool = Field(True, description="Serve /docs and /openapi.json.")

    @field_validator("host")
    @classmethod
    def _no_wildcard_ipv6_scope(cls, value: str) -> str:
        if any(c.isspace() for c in value) or "/" in value:
            raise ValueError("host must be a bare address or host name")
        return value

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("otlp_endpoint must be an http:// or https:// URL")
        return value

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets `field` (its first alias)."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return f"{ENV_PREFIX}{field.upper()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
