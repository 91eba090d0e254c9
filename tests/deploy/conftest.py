"""Fixtures of the deployment-script tests: a StubEnv per test, the scripts' directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure_scenarios import SCRIPTS
from stubkit import StubEnv


@pytest.fixture
def stub_env(tmp_path: Path) -> StubEnv:
    """Stub `az`, `curl` and `ml-service` first on PATH, with an empty scenario."""
    return StubEnv(tmp_path)


@pytest.fixture
def azure_dir() -> Path:
    """deploy/azure."""
    return SCRIPTS
