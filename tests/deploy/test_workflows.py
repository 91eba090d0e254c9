"""What the pipeline definitions promise about privilege, read from the files themselves: every
action pinned by commit, each half of a release under its own identity and environment, the
AKS release only for tags in a reviewed environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path: Path) -> None:
    uses = [line for line in path.read_text().splitlines() if "uses:" in line]
    assert uses
    assert [line for line in uses if not PINNED.match(line)] == []


def test_staging_and_production_run_as_different_identities() -> None:
    jobs = load(ROOT / ".github" / "workflows" / "deploy.yml")["jobs"]
    assert jobs["staging"]["environment"]["name"] == "staging"
    assert jobs["production"]["environment"]["name"] == "production"
    assert jobs["production"]["needs"] == "staging"
    assert "decision == 'promote'" in jobs["production"]["if"]
    for name in ("staging", "production"):
        steps = jobs[name]["steps"]
        login = next(s for s in steps if "azure/login" in s.get("uses", ""))
        # Resolved in the job's environment: each environment holds its own client id.
        assert login["with"]["client-id"] == "${{ vars.AZURE_CLIENT_ID }}"
        runs = " ".join(s.get("run", "") for s in steps)
        assert f"make deploy-{name}" in runs
        assert "slot swap" not in runs
        assert "traffic-routing" not in runs
    assert "id-token" not in load(ROOT / ".github" / "workflows" / "deploy.yml")["permissions"]


def test_aks_deploys_only_tags_through_a_reviewed_environment() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "aks.yml")
    assert workflow[True]["push"] == {"tags": ["v*"]}
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "aks"
    assert job["if"] == "github.ref_type == 'tag' && startsWith(github.ref_name, 'v')"
    assert job["env"]["AZURE_ACR_CREATE"] == "false"
    assert "make aks-release" in " ".join(s.get("run", "") for s in job["steps"])


def test_azure_pipelines_uses_one_service_connection_per_stage() -> None:
    pipeline = load(ROOT / "azure-pipelines.yml")
    stages = {s["stage"]: s for s in pipeline["stages"]}
    connections = {}
    for name in ("Staging", "Production"):
        (job,) = stages[name]["jobs"]
        steps = job["strategy"]["runOnce"]["deploy"]["steps"]
        (cli,) = [s for s in steps if s.get("task") == "AzureCLI@2"]
        connections[name] = cli["inputs"]["azureSubscription"]
        assert f"make deploy-{name.lower()}" in cli["inputs"]["inlineScript"]
    assert connections == {
        "Staging": "${{ variables.azureServiceConnectionStaging }}",
        "Production": "${{ variables.azureServiceConnectionProduction }}",
    }
    assert "release.decision" in stages["Production"]["condition"]
