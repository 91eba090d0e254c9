"""deploy/azure/aks.sh and acr-build.sh, run offline against stub `az`, `kubectl`, `ml-service`.

The stubs (tests/deploy/stubkit.py) record every call and answer from a scenario whose state
flags (`group`, `acr`, `aks`, `attached`) the create commands set, so a first run against an
empty subscription, a re-run, and the failure paths differ as they do on Azure. `kubectl apply`
goes through a wrapper that also renders the applied kustomization with the real, pinned
kubectl, so the test sees the manifests and image the cluster would get. Every `az` line the
runs produce is finally checked against the real azure-cli (tests/deploy/azcli_check.py).
"""

from __future__ import annotations

import base64
import hashlib
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
OLD_IMAGE = f"{ACR}.azurecr.io/ml-service:v1.2.2"
KEY = "aks-example-key-5Qm2Zp7Vx0Lr9Tn4Wc8Yh1Bd6Gf3Js"
OPERATOR = "7a1c0e52-9d3b-4c8e-b6f1-2e4d5a6b7c8d"
IDENTITY = {"principalId": "9a9a0003-0000-4000-8000-000000000003", "clientId": "c11e0003"}
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
    "networkProfile": {"networkPlugin": "azure", "networkPolicy": "calico"},
    "aadProfile": {"managed": True, "enableAzureRbac": True},
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


def azure(
    *,
    address_after: int = 1,
    rollout_ok: bool = True,
    smoke_ok: bool = True,
    watch: int = 0,
    compare: int = 0,
) -> list[Rule]:
    """A subscription with ACR and AKS, and a cluster whose load balancer gets an address.
    Flags: `running` (a release runs, image OLD_IMAGE), `secret` (the API key Secret exists)."""
    key = base64.b64encode(KEY.encode()).decode()
    get_secret = ["--namespace", "ml-service", "get", "secret", "ml-service-api-keys"]
    get_secret.append("--ignore-not-found")
    watch_line = {0: "healthy: within the limits (90 prediction requests in 60 s)",
                  3: "unhealthy: 5xx share 9.00% is above the limit of 1.00%"}[watch]  # fmt: skip
    return [
        az(["account", "show"], {"json": {"id": SUB, "user": {"name": "dev", "type": "user"}}}),
        az(["ad", "signed-in-user", "show"], {"json": {"id": OPERATOR}}),
        az(
            ["role", "assignment", "list"],
            {"json": [{"id": "r"}]},
            if_keyed=["--assignee", "--role", "--scope"],
        ),
        az(["role", "assignment", "list"], {"json": [{"id": "r"}]}, **{"if": ["roles"]}),
        az(
            ["role", "assignment", "create"],
            {"json": {"id": "r"}},
            sets_keyed=["--assignee-object-id", "--role", "--scope"],
        ),
        az(
            ["identity", "show"],
            missing("Microsoft.ManagedIdentity/userAssignedIdentities", "x"),
            unless=["identity"],
        ),
        az(["identity", "show"], {"json": IDENTITY}),
        az(["identity", "create"], {"json": IDENTITY, "sets": ["identity"]}),
        az(["identity", "delete"], {"json": None, "clears": ["identity"]}),
        {"cmd": "kubelogin", "args": ["convert-kubeconfig"], "stdout": ""},
        kubectl(["apply", "--filename"], {"stdout": "namespace/ml-service unchanged\n"}),
        kubectl(get_secret, {"stdout": "secret/ml-service-api-keys\n"}, **{"if": ["secret"]}),
        kubectl(get_secret),
        kubectl(
            ["create", "--filename", "-"],
            {
                "stdout": "secret/ml-service-api-keys created\n",
                "read_stdin": True,
                "sets": ["secret"],
            },
        ),
        kubectl(["--namespace", "ml-service", "get", "secret"], {"stdout": key}),
        kubectl(
            ["--namespace", "ml-service", "get", "deployment", "ml-service", "--ignore-not-found"],
            {"stdout": OLD_IMAGE},
            **{"if": ["running"]},
        ),
        kubectl(
            ["--namespace", "ml-service", "get", "deployment", "ml-service", "--ignore-not-found"]
        ),
        kubectl(["--namespace", "ml-service", "get", "deployment", "ml-service"], {"stdout": "3"}),
        kubectl(
            ["--namespace", "ml-service", "port-forward"],
            {"stdout": "Forwarding from 127.0.0.1:18080 -> 8000\n"},
        ),
        kubectl(["--namespace", "ml-service", "delete"], {"stdout": ""}),
        {"cmd": "ml-service", "args": ["watch"], "stdout": watch_line + "\n", "exit": watch},
        {"cmd": "ml-service", "args": ["compare"], "stdout": "decision: x\n", "exit": compare},
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
        az(
            ["role", "assignment", "list"],
            {"json": [ASSIGNMENT]},
            options={"--assignee": KUBELET, "--role": "AcrPull"},
            **{"if": ["attached"]},
        ),
        az(["role", "assignment", "list"], {"json": []}),
        kubectl(["apply"], {"stdout": "deployment.apps/ml-service configured\n"}),
        kubectl(
            ["--namespace", "ml-service", "rollout", "status", "deployment/ml-service-canary"],
            {"stdout": 'deployment "ml-service-canary" successfully rolled out\n'},
        ),
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
    env = StubEnv(root, commands=("az", "ml-service", "kubectl", "kubelogin"))
    stub = env.bin / "kubectl-stub"
    (env.bin / "kubectl").rename(stub)
    wrapper = env.bin / "kubectl"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = apply ] && [ "$2" = --kustomize ]; then\n'
        f'    "{real_kubectl}" kustomize "$3" > "{root}/applied.yaml" || exit 1\n'
        f'    {{ cat "{root}/applied.yaml"; echo ---; }} >> "{root}/applied-all.yaml"\n'
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
    return [
        c
        for c in env.commands("az")
        if c.split()[-1] in {"create", "update", "delete"}
        and c.split()[0] not in {"role", "identity"}
    ]


def roles(env: StubEnv) -> list[tuple[str | None, str | None, str | None]]:
    """The role assignments made: (object id, role, scope without the group's prefix)."""
    prefix = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
    return [
        (
            option(a, "--assignee-object-id"),
            option(a, "--role"),
            (option(a, "--scope") or "").removeprefix(prefix),
        )
        for a in env.calls("az")
        if a[:3] == ["role", "assignment", "create"]
    ]


def all_applied(env: StubEnv) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((env.root / "applied-all.yaml").read_text()) if d]


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
    # NetworkPolicy is enforced; Kubernetes authorizes with Azure RBAC, no local accounts.
    assert option(create, "--network-policy") == "calico"
    assert option(create, "--network-plugin") == "azure"
    assert {"--enable-aad", "--enable-azure-rbac", "--disable-local-accounts"} <= set(create)
    # The pipeline's identity gets the registry and the namespace, nothing wider; the operator
    # administers the cluster.
    cluster = f"Microsoft.ContainerService/managedClusters/{CLUSTER}"
    registry = f"Microsoft.ContainerRegistry/registries/{ACR}"
    assert roles(env) == [
        (OPERATOR, "Azure Kubernetes Service RBAC Cluster Admin", cluster),
        (IDENTITY["principalId"], "AcrPush", registry),
        (IDENTITY["principalId"], "Container Registry Tasks Contributor", registry),
        (IDENTITY["principalId"], "Azure Kubernetes Service Cluster User Role", cluster),
        (
            IDENTITY["principalId"],
            "Azure Kubernetes Service RBAC Writer",
            f"{cluster}/namespaces/ml-service",
        ),
    ]
    # The API key Secret: created from stdin, read back for the smoke test, never shown.
    (secret,) = [e for e in env.entries() if e["argv"][:2] == ["create", "--filename"]]
    assert secret["stdin_len"] > 100
    assert KEY not in result.stdout + result.stderr + env.log_text()
    (smoke,) = [e for e in env.entries() if e["cmd"] == "ml-service"]
    assert smoke["env_sha256"] == {"ML_SERVICE_API_KEY": hashlib.sha256(KEY.encode()).hexdigest()}
    kubelogin = env.calls("kubelogin")
    assert kubelogin
    assert all(c[:3] == ["convert-kubeconfig", "--login", "azurecli"] for c in kubelogin)

    # The cluster gets the aks overlay with this deployment's image from the registry.
    docs = applied(env)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{ACR}.azurecr.io/ml-service:{TAG}"
    assert next(d for d in docs if d["kind"] == "Service")["spec"]["type"] == "LoadBalancer"

    # Credentials went to a temporary kubeconfig, never to the user's.
    kubeconfig = (tmp_path / "kubeconfig-name").read_text().strip()
    credentials = [a for a in env.calls("az") if a[:2] == ["aks", "get-credentials"]][-1]
    assert option(credentials, "--file") == kubeconfig
    assert not (env.home / ".kube").exists()
    assert not Path(kubeconfig).exists(), "the temporary kubeconfig was left behind"
    assert not list((ROOT / "build").glob("aks-overlay.*")), "the wrapping overlay was left"

    kube = [k for k in env.calls("kubectl") if "secret" not in k and "--filename" not in k]
    kube = kube[kube.index(next(k for k in kube if k[:2] == ["apply", "--kustomize"])) :]
    assert kube[0][:2] == ["apply", "--kustomize"]
    assert kube[1][2:5] == ["rollout", "status", "deployment/ml-service"]
    assert not any(d["kind"] == "Namespace" for d in docs), "the release leaves the namespace be"
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


def test_an_old_cluster_gets_network_policy_and_azure_rbac(
    tmp_path: Path, real_kubectl: Path
) -> None:
    old = CLUSTER_JSON | {"networkProfile": {"networkPolicy": None}, "aadProfile": None}
    rules = [az(["aks", "show"], {"json": old}, unless=["updated"]), *azure()]
    rules = [r | {"sets": ["updated"]} if r["args"][:2] == ["aks", "update"] else r for r in rules]
    env = stub_env(tmp_path, real_kubectl, rules, "group", "acr", "aks", "attached")
    result = run(env, AKS, "provision")
    assert result.returncode == 0, result.stdout + result.stderr
    updates = [a for a in env.calls("az") if a[:2] == ["aks", "update"]]
    assert [option(updates[0], "--network-policy")] == ["calico"]
    assert {"--enable-aad", "--enable-azure-rbac"} <= set(updates[1])
    assert env.calls("ml-service") == []


def canary_run(tmp_path: Path, real_kubectl: Path, watch: int) -> tuple[StubEnv, Any]:
    flags = ("group", "acr", "aks", "attached", "roles", "identity", "running", "secret")
    env = stub_env(tmp_path, real_kubectl, azure(watch=watch), *flags)
    result = run(env, AKS, "release", "--canary", "10", "--canary-seconds", "60",
                 GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))  # fmt: skip
    return env, result


def test_release_with_a_canary_promotes_a_healthy_image(tmp_path: Path, real_kubectl: Path) -> None:
    env, result = canary_run(tmp_path, real_kubectl, watch=0)
    assert result.returncode == 0, result.stdout + result.stderr
    assert az_creates(env) == [], "the release creates nothing in Azure"
    docs = all_applied(env)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deployments] == ["ml-service-canary", "ml-service"]
    canary = deployments[0]
    assert canary["spec"]["replicas"] == 1  # beside 3 stable pods: 25 %, the least above 10 %
    for d in deployments:
        assert d["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{TAG}")
    kube = env.calls("kubectl")
    forward = next(k for k in kube if "port-forward" in k)
    assert forward[-2:] == ["deployment/ml-service-canary", ":http"]
    (watch,) = [c for c in env.calls("ml-service") if c[0] == "watch"]
    assert option(watch, "--url") == "http://127.0.0.1:18080"
    assert option(watch, "--seconds") == "60"
    smokes = [option(c, "--url") for c in env.calls("ml-service") if c[0] == "predict"]
    assert smokes == ["http://127.0.0.1:18080", f"http://{ADDRESS}"]
    deletes = [k for k in kube if "delete" in k]
    selector = ["--selector", "app.kubernetes.io/track=canary", "--ignore-not-found"]
    assert deletes == [["--namespace", "ml-service", "delete", "deployment,configmap", *selector]]
    applies = [i for i, k in enumerate(kube) if k[:2] == ["apply", "--kustomize"]]
    assert kube.index(deletes[0]) > applies[-1], "the canary goes once the stable pods run it"
    text = (tmp_path / "summary.md").read_text()
    assert "Canary at 10% for 60s: healthy" in text
    assert "**Released**" in text


def test_release_with_an_unhealthy_canary_rolls_back(tmp_path: Path, real_kubectl: Path) -> None:
    env, result = canary_run(tmp_path, real_kubectl, watch=3)
    assert result.returncode == 1
    assert "canary unhealthy (unhealthy: 5xx share 9.00%" in result.stderr
    docs = all_applied(env)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"] == [
        "ml-service-canary"
    ], "the stable Deployment is never touched"
    assert any("delete" in k for k in env.calls("kubectl"))
    assert "**Rolled back**" in (tmp_path / "summary.md").read_text()


def test_challenger_loses_on_aks_keeps_the_running_release(
    tmp_path: Path, real_kubectl: Path
) -> None:
    flags = ("group", "acr", "aks", "attached", "roles", "identity", "running", "secret")
    env = stub_env(tmp_path, real_kubectl, azure(compare=3), *flags)
    result = run(env, AKS, "release", "--compare", "--canary", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "applied-all.yaml").exists()
    (compare,) = [c for c in env.calls("ml-service") if c[0] == "compare"]
    assert option(compare, "--champion") == f"url:http://{ADDRESS}"
    assert "Kept the champion" in result.stdout


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
    running = ("group", "acr", "aks", "attached", "roles", "identity", "running", "secret")
    old = CLUSTER_JSON | {"networkProfile": {"networkPolicy": None}, "aadProfile": None}
    old_cluster = [az(["aks", "show"], {"json": old}), *azure()]
    cases: list[tuple[Path, tuple[str, ...], tuple[str, ...], dict[str, str], list[Rule]]] = [
        (AKS, ("deploy",), (), {"AZURE_AKS_VERSION": "1.33.3"}, azure()),
        (AKS, ("deploy",), ("group", "acr", "aks"), {}, azure()),
        (AKS, ("provision",), ("group", "acr", "aks", "attached"), {}, old_cluster),
        (AKS, ("release", "--canary", "10"), running, {}, azure()),
        (AKS, ("teardown",), ("group", "acr", "aks", "attached", "identity"), {}, azure()),
        (ACR_BUILD, (), (), {}, azure()),
        (ACR_BUILD, (), (), {"AZURE_ACR_CREATE": "false"}, azure()),
    ]
    for index, (script, args, flags, extra, rules) in enumerate(cases):
        env = stub_env(tmp_path / str(index), real_kubectl, rules, *flags)
        result = run(env, script, *args, **extra)
        assert result.returncode == 0, result.stdout + result.stderr
        lines += env.calls("az")
    commands = {" ".join(w for w in line[:3] if not w.startswith("-")) for line in lines}
    assert len(commands) >= 10, sorted(commands)
    failures = check_lines(
        str(AZ_REAL), lines, cache=AZ_REAL.resolve().parent.parent / "checked-lines.json"
    )
    assert not failures, "\n".join(str(f) for f in failures)
