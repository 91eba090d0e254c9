"""Settings: every knob of the service, read once from the environment.

Each field's environment variable is `ML_SERVICE_<FIELD>` except `PORT`, which keeps the name
App Service, Kubernetes and most platforms pass. Values outside the documented bounds are
refused at start-up rather than silently clamped. The README's configuration table lists every
field (a test keeps the two in step).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "ML_SERVICE_"
# prometheus_client reads this when first imported: every worker must see it set by then.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_MODEL_DIR = Path("models/housing")
# Model names as paths and directories carry them.
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
# A registered version by number or alias (ml_service.promotion.registry reads it).
REGISTRY_REFERENCE = re.compile(
    r"^models:/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
    r"(?:/[1-9][0-9]{0,9}|@[A-Za-z][A-Za-z0-9_-]{0,254})$"
)


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
    model_dir: Path | None = Field(
        None,
        description="One model artifact directory to serve (default `models/housing` when no "
        "repository is set).",
    )
    model_repository: Path | None = Field(
        None,
        description="Model repository to serve: every `<name>/<version>/` artifact under it.",
    )
    default_model: str | None = Field(
        None,
        pattern=MODEL_NAME,
        description="Model that `/predict` and the page serve (default: the only model).",
    )
    default_versions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="`name=version,...`: the default version of these models (default: the "
        "newest by training time).",
    )
    repository_poll_seconds: float | None = Field(
        None,
        gt=0,
        le=86400,
        description="Check the repository for new versions this often and load them (off "
        "when unset).",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token for the model repository API (/v2/repository/...); the API "
        "answers 403 when unset. At least 16 characters.",
    )
    registry_models: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated MLflow registry references (`models:/<name>/<version>` or "
        "`models:/<name>@<alias>`) downloaded, verified, into the model repository at start-up "
        "and served from it; needs `ML_SERVICE_MODEL_REPOSITORY`, `MLFLOW_TRACKING_URI` and the "
        "tracking extra.",
    )
    model_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Pin of the one artifact served: the lowercase hex SHA-256 of its "
        "`manifest.json`, checked before anything of it is loaded.",
    )
    max_error_details: int = Field(
        100, ge=1, le=10_000, description="Most problems listed in one error body."
    )

    # Authentication and resource limits.
    api_keys: SecretStr | None = Field(
        None,
        description="Comma-separated API keys (each at least 16 characters); when set (or "
        "`ML_SERVICE_API_KEYS_FILE`), every endpoint but the probes and the page shell needs "
        "one.",
    )
    api_keys_file: Path | None = Field(
        None, description="File of API keys, one per line (blank lines and `#` comments skipped)."
    )
    max_in_progress: int = Field(
        128,
        ge=1,
        le=100_000,
        description="Requests one worker handles at once; more get 503 with Retry-After.",
    )
    max_body_bytes_in_progress: int = Field(
        16 * 1_048_576,
        ge=1024,
        le=4096 * 1_048_576,
        description="Bytes of prediction bodies one worker holds at once (at least the body "
        "limit); a request that would pass it gets 503 with Retry-After, unless it is alone.",
    )
    log_inputs: bool = Field(
        False,
        description="Log the input and output values of small prediction requests; when false "
        "only their SHA-256 digests.",
    )
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

    # Slow clients: how long a connection may take to deliver a request. Each is a total, not
    # an idle gap, so trickling one byte at a time does not keep a connection (or a drain) open.
    header_timeout: float = Field(
        10.0,
        ge=1,
        le=120,
        description="Seconds a request's line and headers may take to arrive; then it is closed.",
    )
    body_timeout: float = Field(
        30.0,
        ge=1,
        le=600,
        description="Seconds a request's body may take to arrive; then 408 and it is closed.",
    )

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

    @field_validator("default_versions", mode="before")
    @classmethod
    def _versions(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pins: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, version = item.partition("=")
            if not sep or not name.strip() or not version.strip():
                raise ValueError(f"{item!r} is not name=version")
            pins[name.strip()] = version.strip()
        return pins

    @field_validator("registry_models", mode="before")
    @classmethod
    def _references(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple):
            wrong = [v for v in value if not isinstance(v, str) or not REGISTRY_REFERENCE.match(v)]
            if wrong:
                raise ValueError(
                    f"{wrong[0]!r} is not models:/<name>/<version> or models:/<name>@<alias>"
                )
        return value

    @field_validator("admin_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _one_model_source(self) -> Self:
        if self.model_dir is not None and self.model_repository is not None:
            raise ValueError(
                "set ML_SERVICE_MODEL_DIR (one artifact) or ML_SERVICE_MODEL_REPOSITORY, not both"
            )
        if self.registry_models and self.model_repository is None:
            raise ValueError(
                "ML_SERVICE_REGISTRY_MODELS needs ML_SERVICE_MODEL_REPOSITORY to download into"
            )
        if self.registry_models and not os.environ.get("MLFLOW_TRACKING_URI"):
            raise ValueError("ML_SERVICE_REGISTRY_MODELS needs MLFLOW_TRACKING_URI (the registry)")
        if self.model_sha256 is not None and self.model_repository is not None:
            raise ValueError("ML_SERVICE_MODEL_SHA256 pins one artifact, not a repository")
        return self

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if self.api_keys is not None and self.api_keys_file is not None:
            raise ValueError("set ML_SERVICE_API_KEYS or ML_SERVICE_API_KEYS_FILE, not both")
        if self.api_keys is not None:
            _check_keys(self.api_keys.get_secret_value().split(","), "ML_SERVICE_API_KEYS")
        return self

    @model_validator(mode="after")
    def _room_for_one_body(self) -> Self:
        if self.max_body_bytes_in_progress < self.max_body_bytes:
            raise ValueError(
                "ML_SERVICE_MAX_BODY_BYTES_IN_PROGRESS must be at least ML_SERVICE_MAX_BODY_BYTES"
            )
        return self

    def api_key_set(self) -> tuple[bytes, ...]:
        """The configured API keys (read from the keys file each call); empty when off."""
        if self.api_keys is not None:
            text = self.api_keys.get_secret_value().replace(",", "\n")
            source = "ML_SERVICE_API_KEYS"
        elif self.api_keys_file is not None:
            try:
                text = self.api_keys_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(
                    f"ML_SERVICE_API_KEYS_FILE {self.api_keys_file}: {exc.strerror or exc}"
                ) from exc
            source = f"ML_SERVICE_API_KEYS_FILE {self.api_keys_file}"
        else:
            return ()
        keys = [line.strip() for line in text.splitlines()]
        keys = [k for k in keys if k and not k.startswith("#")]
        _check_keys(keys, source)
        return tuple(k.encode() for k in keys)

    @property
    def artifact_dir(self) -> Path:
        """The single artifact served when no repository is set."""
        return self.model_dir or DEFAULT_MODEL_DIR

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


MIN_KEY_LENGTH = 16


def _check_keys(keys: list[str], source: str) -> None:
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        raise ValueError(f"{source} holds no key")
    short = sum(len(k) < MIN_KEY_LENGTH for k in keys)
    if short:
        raise ValueError(f"{source}: {short} key(s) shorter than {MIN_KEY_LENGTH} characters")
    if any(not k.isprintable() or " " in k for k in keys):
        raise ValueError(f"{source}: keys must be printable, without spaces")
