"""deploy/azure/aks.sh and acr-build.sh, run offline against stub `az`, `kubectl`, `ml-service`.

The stubs (tests/deploy/stubkit.py) record every call and answer from a scenario whose state
flags (`group`, `acr`, `aks`, `attached`) the create commands set, so a first run against an
empty subscription, a re-run, and the failure paths differ as they do on Azure. `kubectl apply`
goes through a wrapper that also renders the applied kustomization with the real, pinned
kubectl, so the test sees the manifests and image the cluster would get. Every `az` line the
runs produce is finally checked against the real azure-cli (tests/deploy/azcli_check.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.azcli_check import check_lines
from tests.deploy.stubkit import StubEnv, option

ROOT = Path(__file__).resolve().parents[2]
AKS = ROOT / "deploy" / "azure" / "aks.sh"
ACR_BUILD = ROOT / "deploy" / "azure" / "acr-build.sh"
KUBECTL = ROOT / ".tools" / "k8s" / "bin" / "kubectl"
AZ_REAL = Path(os.environ.get("AZURE_CLI_REAL") or ROOT / ".tools" / "azure-cli" / "bin" / "az")

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
RG = "Azuredevops"
ACR = "mlserviceacr"
CLUSTER = "ml-service-aks"
KUBELET = "a2c6f1d4-3b7e-4e0f-9c1a-6d5b8e2f7a90"
ADDRESS = "20.81.4.7"
TAG = "v1.2.3"
Rule = dict[str, Any]

pytestmark = pytest.mark.slow


def rid(path: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{path}"


def missing(kind: str, name: str) -> Rule:
    """`az ... show` of a resource that does not exist, as the CLI answers it."""
    msg = f"The Resource '{kind}/{name}' under resource group '{RG}' was not found."
    return {"exit": 3, "stderr": f"ERROR: (ResourceNotFound) {msg}\nCode: ResourceNotFound\n"}


def az(args: list[str], answer: Rule | None = None, **match: Any) -> Rule:
    return {"cmd": "az", "args": args, **match, **(answer or {"json": None})}


def kubectl(args: list[str], answer: Rule | None = None, **match: Any) -> Rule:
    return {"cmd": "kubectl", "args": args, **match, **(answer or {"stdout": ""})}


GROUP = {"id": f"/subscriptions/{SUB}/resourceGroups/{RG}", "name": RG, "location": "centralus"}
REGISTRY = {
    "id": rid(f"Microsoft.ContainerRegistry/registries/{ACR}"),
    "name": ACR,
    "loginServer": f"{ACR}.azurecr.io",
    "sku": {"name": "Basic", "tier": "Basic"},
    "provisioningState": "Succeeded",
}
CLUSTER_JSON = {
    "id": rid(f"Microsoft.ContainerService/managedClusters/{CLUSTER}"),
    "name": CLUSTER,
    "kubernetesVersion": "1.33.3",
    "provisioningState": "Succeeded",
    "identityProfile": {
        "kubeletidentity": {"objectId": KUBELET, "clientId": "c1", "resourceId": "r"}
    },
}
ASSIGNMENT = {
    "id": f"{REGISTRY['id']}/providers/Microsoft.Authorization/roleAssignments/3f9c",
    "principalId": KUBELET,
    "roleDefinitionName": "AcrPull",
    "scope": REGISTRY["id"],
}


def azure(*, address_after: int = 1, rollout_ok: bool = True, smoke_ok: bool = True) -> list[Rule]:
    """A subscription with ACR and AKS, and a cluster whose load balancer gets an address."""
    return [
        az(["group", "show"], missing("resourceGroups", RG), unless=["group"]),
        az(["group", "show"], {"json": GROUP}),
        az(["group", "create"], {"json": GROUP, "sets": ["group"]}),
        az(["acr", "show"], missing("Microsoft.ContainerRegistry/registries", ACR), unless=["acr"]),
        az(["acr", "show"], {"json": REGISTRY}),
        az(["acr", "create"], {"json": REGISTRY, "sets": ["acr"]}),
        az(["acr", "build"], {"stdout": "Run ID: ca1 was successful after 2m31s\n"}),
        az(["acr", "delete"], {"json": None, "clears": ["acr"]}),
        az(
            ["aks", "show"],
            missing("Microsoft.ContainerService/managedClusters", CLUSTER),
            unless=["aks"],
        ),
        az(["aks", "show"], {"json": CLUSTER_JSON}),
        az(["aks", "create"], {"json": CLUSTER_JSON, "sets": ["aks", "attached"]}),
        az(["aks", "update"], {"json": CLUSTER_JSON, "sets": ["attached"]}),
        az(["aks", "delete"], {"json": None, "clears": ["aks", "attached"]}),
        az(["aks", "get-credentials"], {"json": None}),
        az(["role", "assignment", "list"], {"json": [ASSIGNMENT]}, **{"if": ["attached"]}),
        az(["role", "assignment", "list"], {"json": []}),
        kubectl(["apply"], {"stdout": "deployment.apps/ml-service configured\n"}),
        kubectl(
            ["--namespace", "ml-service", "rollout", "status"],
            {"stdout": 'deployment "ml-service" successfully rolled out\n'}
            if rollout_ok
            else {"exit": 1, "stderr": "error: timed out waiting for the condition\n"},
        ),
        kubectl(
            ["--namespace", "ml-service", "get", "service"], {"stdout": ""}, times=address_after
        ),
        kubectl(["--namespace", "ml-service", "get", "service"], {"stdout": ADDRESS}),
        {
            "cmd": "ml-service",
            "args": ["predict"],
            **(
                {"stdout": '{"predictions": [28.3]}\n'}
                if smoke_ok
                else {"exit": 1, "stderr": "predict: 502 Bad Gateway\n"}
            ),
        },
    ]


@pytest.fixture(scope="module")
def real_kubectl() -> Path:
    """The pinned kubectl of `make k8s-tools`."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    subprocess.run(
        ["make", "--no-print-directory", "k8s-tools"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return KUBECTL


def stub_env(root: Path, real_kubectl: Path, rules: list[Rule], *flags: str) -> StubEnv:
    """Stubs for az, ml-service and kubectl; `kubectl apply` also renders what it applies."""
    env = StubEnv(root, commands=("az", "ml-service", "kubectl"))
    stub = env.bin / "kubectl-stub"
    (env.bin / "kubectl").rename(stub)
    wrapper = env.bin / "kubectl"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = apply ] && [ "$2" = --kustomize ]; then\n'
        f'    "{real_kubectl}" kustomize "$3" > "{root}/applied.yaml" || exit 1\n'
        f'    cp "$KUBECONFIG" "{root}/kubeconfig-path" 2>/dev/null\n'
        f'    echo "$KUBECONFIG" > "{root}/kubeconfig-name"\n'
        "fi\n"
        f'STUB_CMD=kubectl exec "{stub}" "$@"\n'
    )
    wrapper.chmod(0o755)
    env.scenario(rules)
    env.set_flags(*flags)
    return env


def run(env: StubEnv, script: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    variables = {
        "IMAGE_TAG": TAG,
        "AKS_POLL_SECONDS": "0",
        "AKS_ADDRESS_TIMEOUT": "5",
        "ML_SERVICE_PREDICT": "ml-service",
        **extra,
    }
    return env.run(script, *args, env=variables, timeout=120)


def applied(env: StubEnv) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((env.root / "applied.yaml").read_text()) if d]


def az_creates(env: StubEnv) -> list[str]:
    return [c for c in env.commands("az") if c.split()[-1] in {"create", "update", "delete"}]


def test_first_run_creates_everything_deploys_and_smoke_tests(
    tmp_path: Path, real_kubectl: Path
) -> None:
    env = stub_env(tmp_path, real_kubectl, azure(address_after=2))
    result = run(env, AKS, "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert az_creates(env) == ["group create", "acr create", "aks create"]
    create = next(a for a in env.calls("az") if a[:2] == ["aks", "create"])
    assert option(create, "--attach-acr") == ACR
    assert option(create, "--resource-group") == RG
    assert "--enable-cluster-autoscaler" in create
    assert "--generate-ssh-keys" not in create

    # The cluster gets the aks overlay with this deployment's image from the registry.
    docs = applied(env)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{ACR}.azurecr.io/ml-service:{TAG}"
    assert next(d for d in docs if d["kind"] == "Service")["spec"]["type"] == "LoadBalancer"

    # Credentials went to a temporary kubeconfig, never to the user's.
    kubeconfig = (tmp_path / "kubeconfig-name").read_text().strip()
    credentials = next(a for a in env.calls("az") if a[:2] == ["aks", "get-credentials"])
    assert option(credentials, "--file") == kubeconfig
    assert not (env.home / ".kube").exists()
    assert not Path(kubeconfig).exists(), "the temporary kubeconfig was left behind"
    assert not list((ROOT / "build").glob("aks-overlay.*")), "the wrapping overlay was left"

    kube = env.calls("kubectl")
    assert kube[0][:2] == ["apply", "--kustomize"]
    assert kube[1][2:5] == ["rollout", "status", "deployment/ml-service"]
    assert len([k for k in kube if "get" in k]) == 3, "polls until the address is assigned"
    assert env.calls("ml-service") == [["predict", "--url", f"http://{ADDRESS}"]]
    assert f"http://{ADDRESS}" in result.stdout


def test_rerun_reuses_everything(tmp_path: Path, real_kubectl: Path) -> None:
    env = stub_env(tmp_path, real_kubectl, azure(), "group", "acr", "aks", "attached")
    result = run(env, AKS, "deploy", AZURE_ACR_NAME="contosoml", IMAGE_TAG="abc123")
    assert result.returncode == 0, result.stdout + result.stderr
    assert az_creates(env) == []
    assert "role assignment list" in env.commands("az")
    deployment = next(d for d in applied(env) if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "contosoml.azurecr.io/ml-service:abc123"
    assert env.calls("ml-service") == [["predict", "--url", f"http://{ADDRESS}"]]


def test_existing_cluster_without_pull_rights_is_attached(
    tmp_path: Path, real_kubectl: Path
) -> None:
    env = stub_env(tmp_path, real_kubectl, azure(), "group", "acr", "aks")
    result = run(env, AKS, "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert az_creates(env) == ["aks update"]
    update = next(a for a in env.calls("az") if a[:2] == ["aks", "update"])
    assert option(update, "--attach-acr") == ACR
    listing = next(a for a in env.calls("az") if a[:3] == ["role", "assignment", "list"])
    assert option(listing, "--assignee") == KUBELET
    assert option(listing, "--scope") == REGISTRY["id"]


def test_failed_rollout_stops_before_the_smoke_test(tmp_path: Path, real_kubectl: Path) -> None:
    env = stub_env(
        tmp_path, real_kubectl, azure(rollout_ok=False), "group", "acr", "aks", "attached"
    )
    result = run(env, AKS, "deploy")
    assert result.returncode != 0
    assert "did not become ready" in result.stderr
    assert env.calls("ml-service") == []


def test_no_load_balancer_address_fails_within_the_deadline(
    tmp_path: Path, real_kubectl: Path
) -> None:
    rules = azure(address_after=10_000)
    env = stub_env(tmp_path, real_kubectl, rules, "group", "acr", "aks", "attached")
    result = run(env, AKS, "deploy", AKS_ADDRESS_TIMEOUT="1", AKS_POLL_SECONDS="0.2")
    assert result.returncode != 0
    assert "no load balancer address within 1s" in result.stderr
    assert env.calls("ml-service") == []


def test_failed_smoke_test_fails_the_deployment(tmp_path: Path, real_kubectl: Path) -> None:
    env = stub_env(tmp_path, real_kubectl, azure(smoke_ok=False), "group", "acr", "aks", "attached")
    result = run(env, AKS, "deploy")
    assert result.returncode != 0
    assert "smoke test" in result.stderr


def test_not_logged_in_is_a_clear_error(tmp_path: Path, real_kubectl: Path) -> None:
    login = az(
        ["group", "show"], {"exit": 1, "stderr": "ERROR: Please run 'az login' to setup account.\n"}
    )
    env = stub_env(tmp_path, real_kubectl, [login])
    result = run(env, AKS, "deploy")
    assert result.returncode != 0
    assert "az login" in result.stderr
    assert env.commands("az") == ["group show"]


def test_teardown_deletes_cluster_and_registry_then_is_a_no_op(
    tmp_path: Path, real_kubectl: Path
) -> None:
    env = stub_env(tmp_path, real_kubectl, azure(), "group", "acr", "aks", "attached")
    first = run(env, AKS, "teardown")
    assert first.returncode == 0, first.stdout + first.stderr
    assert az_creates(env) == ["aks delete", "acr delete"]
    assert all("--yes" in a for a in env.calls("az") if a[1:2] == ["delete"])
    assert "group delete" not in env.commands("az")
    env.clear_log()
    again = run(env, AKS, "teardown")
    assert again.returncode == 0, again.stdout + again.stderr
    assert az_creates(env) == []


def test_usage(tmp_path: Path, real_kubectl: Path) -> None:
    env = stub_env(tmp_path, real_kubectl, azure())
    result = run(env, AKS)
    assert result.returncode == 2
    assert "usage" in result.stderr
    assert env.calls() == []


def test_acr_build_creates_the_registry_once_and_builds_the_tag(
    tmp_path: Path, real_kubectl: Path
) -> None:
    env = stub_env(tmp_path, real_kubectl, azure())
    first = run(env, ACR_BUILD)
    assert first.returncode == 0, first.stdout + first.stderr
    assert az_creates(env) == ["group create", "acr create"]
    build = next(a for a in env.calls("az") if a[:2] == ["acr", "build"])
    assert option(build, "--registry") == ACR
    assert option(build, "--image") == f"ml-service:{TAG}"
    assert option(build, "--file") == str(ROOT / "Dockerfile")
    assert build[-1] == str(ROOT)
    env.clear_log()
    again = run(env, ACR_BUILD)
    assert again.returncode == 0, again.stdout + again.stderr
    assert az_creates(env) == []
    assert "acr build" in env.commands("az")


def test_acr_build_refuses_bad_names_before_calling_azure(
    tmp_path: Path, real_kubectl: Path
) -> None:
    env = stub_env(tmp_path, real_kubectl, azure())
    bad_name = run(env, ACR_BUILD, AZURE_ACR_NAME="ml-service")
    assert bad_name.returncode != 0
    assert "AZURE_ACR_NAME" in bad_name.stderr
    bad_tag = run(env, ACR_BUILD, IMAGE_TAG="no spaces")
    assert bad_tag.returncode != 0
    assert env.calls() == []


def test_every_az_line_is_accepted_by_the_real_azure_cli(
    tmp_path: Path, real_kubectl: Path
) -> None:
    """All `az` lines of the runs above, through the real CLI (logged out): none rejected."""
    if not AZ_REAL.exists():
        if os.environ.get("AZURE_CLI_REQUIRED") == "1":
            pytest.fail(f"{AZ_REAL} missing: run make azure-cli")
        pytest.skip("real azure-cli not installed (make azure-cli)")
    lines: list[list[str]] = []
    cases: list[tuple[Path, tuple[str, ...], tuple[str, ...], dict[str, str]]] = [
        (AKS, ("deploy",), (), {"AZURE_AKS_VERSION": "1.33.3"}),
        (AKS, ("deploy",), ("group", "acr", "aks"), {}),
        (AKS, ("teardown",), ("group", "acr", "aks", "attached"), {}),
        (ACR_BUILD, (), (), {}),
    ]
    for index, (script, args, flags, extra) in enumerate(cases):
        env = stub_env(tmp_path / str(index), real_kubectl, azure(), *flags)
        result = run(env, script, *args, **extra)
        assert result.returncode == 0, result.stdout + result.stderr
        lines += env.calls("az")
    commands = {" ".join(w for w in line[:3] if not w.startswith("-")) for line in lines}
    assert len(commands) >= 10, sorted(commands)
    failures = check_lines(
        str(AZ_REAL), lines, cache=AZ_REAL.resolve().parent.parent / "checked-lines.json"
    )
    assert not failures, "\n".join(str(f) for f in failures)
