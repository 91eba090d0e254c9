"""The Kubernetes manifests render, validate, and keep the properties a scheduler relies on.

`make lint-k8s` renders every overlay of deploy/k8s with the pinned kubectl (kustomize) and
validates it with `kubernetes-validate --strict`; these tests run that very target, then read
what it rendered and check what a schema cannot: probes on the right endpoints, a drain that
fits in the termination grace period, selectors that match, settings the service knows. A
broken copy of the manifests must make the same target fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ml_service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
Doc = dict[str, Any]

pytestmark = pytest.mark.slow


def make(target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run one make target from the repository root with variable overrides."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    args = ["make", "--no-print-directory", target, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    """Every overlay as `make lint-k8s` rendered it (the target must pass)."""
    out = tmp_path_factory.mktemp("k8s-out")
    result = make("lint-k8s", K8S_OUT=str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    docs = {}
    for overlay in (*OVERLAYS, "canary"):
        text = (out / f"{overlay}.yaml").read_text()
        docs[overlay] = [d for d in yaml.safe_load_all(text) if d]
    return docs


def one(docs: list[Doc], kind: str) -> Doc:
    """The single resource of `kind`."""
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def cpu_cores(quantity: str) -> float:
    """A CPU quantity ("500m", "2") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def mebibytes(quantity: str) -> float:
    """A memory quantity ("384Mi", "1Gi") in MiB."""
    units = {"Mi": 1.0, "Gi": 1024.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_overlays_exist() -> None:
    assert set(OVERLAYS) >= {"local", "aks"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_kind_is_there(rendered: dict[str, list[Doc]], overlay: str) -> None:
    kinds = sorted(d["kind"] for d in rendered[overlay])
    for kind in (
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
    ):
        assert kind in kinds, f"{overlay}: no {kind}"
    namespaced = [d for d in rendered[overlay] if d["kind"] != "Namespace"]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"ml-service"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_probed_and_drain_within_grace(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] in {"/health/live", "/health/ready"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports

    config = one(docs, "ConfigMap")["data"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": one(docs, "ConfigMap")["metadata"]["name"]}}
    ]
    assert int(config["PORT"]) == ports["http"]
    assert config["ML_SERVICE_HOST"] == "0.0.0.0"

    # preStop delay + the server's drain + a margin must fit in the grace period.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(config["ML_SERVICE_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain + 5


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_locked_down(rendered: dict[str, list[Doc]], overlay: str) -> None:
    pod = one(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    # The Service named ml-service would otherwise inject ML_SERVICE_PORT=tcp://... variables.
    assert pod["enableServiceLinks"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "/tmp must be a writable emptyDir"
    config = one(rendered[overlay], "ConfigMap")["data"]
    assert config["ML_SERVICE_METRICS_DIR"].startswith("/tmp/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_and_workers_agree(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) >= {"cpu", "memory"}, f"{overlay}: {kind} incomplete"
    assert cpu_cores(resources["requests"]["cpu"]) <= cpu_cores(resources["limits"]["cpu"])
    assert mebibytes(resources["requests"]["memory"]) <= mebibytes(resources["limits"]["memory"])
    workers = int(one(docs, "ConfigMap")["data"]["ML_SERVICE_WORKERS"])
    assert workers <= max(1, cpu_cores(resources["limits"]["cpu"]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_scaling_fit_together(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    service = one(docs, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # A drain of one node must stay possible: the floor is above the budget.
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]
    assert deployment["spec"]["replicas"] >= hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_overlay_specifics(rendered: dict[str, list[Doc]]) -> None:
    local = one(rendered["local"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert local["image"] == "ml-service:local"
    assert local["imagePullPolicy"] == "IfNotPresent"
    aks = one(rendered["aks"], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"[a-z0-9]+\.azurecr\.io/ml-service:[\w.-]+", aks["image"])
    assert one(rendered["aks"], "Service")["spec"]["type"] == "LoadBalancer"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_ones_the_service_reads(
    rendered: dict[str, list[Doc]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = one(rendered[overlay], "ConfigMap")["data"]
    known = {Settings.env_name(field) for field in Settings.model_fields}
    assert set(config) <= known, f"unknown settings: {set(config) - known}"
    for name in known:
        monkeypatch.delenv(name, raising=False)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.port == int(config["PORT"])


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_network_policy_lets_in_only_the_service_port_and_out_only_dns_and_otlp(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    policy = one(docs, "NetworkPolicy")["spec"]
    deployment = one(docs, "Deployment")
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels(deployment).items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    service = one(docs, "Service")
    # Ingress: the port the Service sends to, from anywhere (clients, probes, Prometheus).
    (ingress,) = policy["ingress"]
    assert set(ingress) == {"ports"}
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert "http" in {p["name"] for p in container["ports"]}
    # Egress: DNS in kube-system (no pod selector the common labels could narrow), and OTLP.
    dns, otlp = policy["egress"]
    assert dns["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    ]
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert otlp == {"ports": [{"port": 4318, "protocol": "TCP"}]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_keys_come_from_a_secret_mounted_as_a_file(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    pod = one(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    path = Path(env["ML_SERVICE_API_KEYS_FILE"]["value"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    secret = volume["secret"]
    assert secret["secretName"] == "ml-service-api-keys"
    assert not secret.get("optional", False), "a pod without keys must not start"
    assert secret["items"] == [{"key": "keys", "path": path.name}]
    assert secret["defaultMode"] & 0o007 == 0, "the keys are not world-readable"
    config = one(rendered[overlay], "ConfigMap")["data"]
    assert not any("API_KEY" in name or "TOKEN" in name for name in config)


def test_the_canary_is_one_deployment_behind_the_stable_service(
    rendered: dict[str, list[Doc]],
) -> None:
    canary_docs = rendered["canary"]
    assert sorted(d["kind"] for d in canary_docs) == ["ConfigMap", "Deployment"]
    canary = one(canary_docs, "Deployment")
    stable = one(rendered["aks"], "Deployment")
    assert canary["metadata"]["name"] == "ml-service-canary"
    assert canary["metadata"]["namespace"] == stable["metadata"]["namespace"]
    assert canary["spec"]["replicas"] == 1
    labels = pod_labels(canary)
    assert labels["app.kubernetes.io/track"] == "canary"
    # The stable Service and network policy cover the canary's pods...
    assert one(rendered["aks"], "Service")["spec"]["selector"].items() <= labels.items()
    policy = one(rendered["aks"], "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    assert policy.items() <= labels.items()
    # ...while the canary's selector never takes in the stable pods.
    assert not canary["spec"]["selector"]["matchLabels"].items() <= pod_labels(stable).items()
    assert "app.kubernetes.io/track" not in stable["spec"]["selector"]["matchLabels"]
    # The pods are the stable ones otherwise: same container, probes, limits, keys.
    (mine,) = canary["spec"]["template"]["spec"]["containers"]
    (theirs,) = stable["spec"]["template"]["spec"]["containers"]
    config = one(canary_docs, "ConfigMap")
    assert mine["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert config["data"] == one(rendered["aks"], "ConfigMap")["data"]
    assert {k: v for k, v in mine.items() if k != "envFrom"} == {
        k: v for k, v in theirs.items() if k != "envFrom"
    }


# A broken copy of the manifests must fail `make lint-k8s` (and so `make lint`).
Breaker = Callable[[Path], None]


def _edit(relative: str, old: str, new: str) -> Breaker:
    def edit(tree: Path) -> None:
        path = tree / relative
        text = path.read_text()
        assert old in text, f"{relative} no longer contains {old!r}"
        path.write_text(text.replace(old, new, 1))

    return edit


BREAKS: dict[str, tuple[Breaker, str]] = {
    # An unknown field: kubernetes-validate --strict answers ERROR.
    "unknown-field": (
        _edit("base/deployment.yaml", "  revisionHistoryLimit: 5", "  revisionHistoryLimt: 5"),
        "ERROR",
    ),
    # A wrong type.
    "wrong-type": (
        _edit("base/pdb.yaml", "minAvailable: 1", 'minAvailable: {"one": 1}'),
        "ERROR",
    ),
    # A misspelt field of the network policy.
    "networkpolicy-field": (
        _edit("base/networkpolicy.yaml", "  policyTypes:", "  policyType:"),
        "ERROR",
    ),
    # The canary's kustomization is rendered and validated too.
    "canary-field": (
        _edit("canary/kustomization.yaml", "    count: 1", "    count: 1\n    replica: 2"),
        "canary",
    ),
    # A removed API version: the validator only WARNs (no schema) and exits 0.
    "removed-api": (_edit("base/pdb.yaml", "policy/v1", "policy/v1beta1"), "WARN"),
    # A kustomization naming a file that does not exist: rendering fails.
    "missing-resource": (
        _edit("base/kustomization.yaml", "  - pdb.yaml", "  - pdbs.yaml"),
        "does not render",
    ),
}


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """A copy of deploy/k8s to break."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_broken_manifests_fail_lint(tree_copy: Path, tmp_path: Path, name: str) -> None:
    breaker, expected = BREAKS[name]
    breaker(tree_copy)
    result = make(
        "lint-k8s", K8S_DIR=str(tree_copy), K8S_OUT=str(tmp_path / "out"), K8S_VERSIONS="1.37.0"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"broken manifests ({name}) pass lint-k8s:\n{output}"
    assert expected in output
    assert "manifests under" in output or "does not render" in output


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_match_the_image(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """The pods' model directory and port are the ones the image bakes in and exposes."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    config = one(rendered[overlay], "ConfigMap")["data"]
    model_dir = re.search(r"ML_SERVICE_MODEL_DIR=(\S+)", dockerfile)
    assert model_dir
    assert config["ML_SERVICE_MODEL_DIR"] == model_dir.group(1)
    assert re.search(rf"^EXPOSE {config['PORT']}$", dockerfile, re.M)
    pod = one(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    user = re.findall(r"^USER (\d+)", dockerfile, re.M)
    assert user[-1:] == [str(pod["securityContext"]["runAsUser"])]
