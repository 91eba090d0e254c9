"""Every path through the Azure scripts, run against the stubs, to collect every `az` command
line they can produce (first runs, re-runs, options, failure paths) for the real-CLI check."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import azure_scenarios as sc
from stubkit import StubEnv

PROVISIONED = sc.PROVISIONED


@dataclass
class Run:
    """One script run: scenario rules, starting flags, arguments, environment."""

    name: str
    script: str
    rules: Callable[[], list[sc.Rule]]
    flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    again: bool = False  # run a second time (the re-run path)


def _runs(root: Path) -> list[Run]:
    package = root / "ml-service-app.zip"
    package.write_bytes(b"PK\x05\x06" + bytes(18))
    deploy_env = {
        "ML_SERVICE_PACKAGE": str(package),
        "DEPLOY_POLL_INTERVAL": "0",
        "DEPLOY_READY_TIMEOUT": "5",
    }
    agent_env = {"ADO_ORG_URL": "https://dev.azure.com/contoso", "ADO_PAT": "not-a-real-pat"}
    package = root / "ml-service-model.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("models/housing/manifest.json", "{}")
    canary = ("--compare", "--canary", "10", "--canary-seconds", "60")
    model_env = deploy_env | {"ML_SERVICE_PACKAGE": str(package)}

    def app() -> list[sc.Rule]:
        return sc.app_service() + sc.curl_ready(after=1) + sc.predict()

    def stopped() -> list[sc.Rule]:
        show = sc.az(["webapp", "show"], {"json": sc.site_json(state="Stopped")}, lacks=["--slot"])
        return [show, *app()]

    def bad_prod() -> list[sc.Rule]:
        return sc.predict(host=sc.SLOT_HOST) + sc.predict(ok=False, host=sc.HOST) + app()

    def promote() -> list[sc.Rule]:
        return app() + sc.compare(0) + sc.watch(0)

    def roll_back() -> list[sc.Rule]:
        return app() + sc.compare(0) + sc.watch(3)

    def keep() -> list[sc.Rule]:
        return app() + sc.compare(3)

    def service_principal() -> list[sc.Rule]:
        login = sc.az(
            ["account", "show"],
            {
                "json": {
                    "id": sc.SUBSCRIPTION,
                    "tenantId": sc.TENANT,
                    "user": {
                        "name": "c0ffee00-1111-4222-8333-444455556666",
                        "type": "servicePrincipal",
                    },
                }
            },
        )
        sp = sc.az(["ad", "sp", "show"], {"json": {"id": sc.OPERATOR}})
        return [login, sp, *app()]

    def forbidden_once() -> list[sc.Rule]:
        slow = sc.az(
            ["keyvault", "secret", "list"],
            {
                "exit": 1,
                "times": 1,
                "stderr": "ERROR: (Forbidden) Caller is not authorized to perform action.\n",
            },
        )
        return [slow, *app()]

    return [
        Run("provision", "provision.sh", app, again=True),
        Run("provision-sku", "provision.sh", app, PROVISIONED, env={"AZURE_PLAN_SKU": "S1"}),
        Run("deploy", "deploy.sh", app, PROVISIONED, env=deploy_env),
        Run("deploy-bad-prod", "deploy.sh", bad_prod, PROVISIONED, env=deploy_env),
        Run("canary", "deploy.sh", promote, PROVISIONED, canary, env=model_env),
        Run("canary-roll-back", "deploy.sh", roll_back, PROVISIONED, canary, env=model_env),
        Run("challenger-loses", "deploy.sh", keep, PROVISIONED, canary, env=model_env),
        Run("provision-service-principal", "provision.sh", service_principal,
            env={"AZURE_RBAC_POLL_INTERVAL": "0"}),
        Run("provision-not-allowed-yet", "provision.sh", forbidden_once,
            env={"AZURE_RBAC_POLL_INTERVAL": "0"}),
        Run("rollback", "rollback.sh", app, (*PROVISIONED, "rollback.available"), again=True),
        Run("smoke", "smoke.sh", stopped, PROVISIONED),
        Run("logs", "logs.sh", app, PROVISIONED, again=True),
        Run("logs-slot", "logs.sh", app, PROVISIONED,
            env={"AZURE_LOG_SLOT": "staging", "LOGS_DOWNLOAD": str(root / "logs.zip")}),
        Run("teardown", "teardown.sh", app, PROVISIONED, ("--yes",), again=True),
        Run("agent", "agent.sh", sc.agent, env=agent_env, again=True),
        Run("agent-private", "agent.sh", sc.agent, env=agent_env | {"AGENT_PUBLIC_SSH": "false"}),
        Run("agent-registered", "agent.sh", sc.agent,
            ("group", "vm", "vault", "policy", "secret.deleted"), env=agent_env),
        Run("agent-teardown", "agent-teardown.sh", sc.agent,
            ("vm", "nic", "pip", "nsg", "vnet", "disk", "vault"), ("--yes",), again=True),
        Run("agent-teardown-leftovers", "agent-teardown.sh", sc.agent,
            ("nic", "disk", "vault.deleted"), ("--yes",)),
    ]  # fmt: skip


def record_all(root: Path) -> dict[str, list[list[str]]]:
    """Run every path; return the recorded `az` argv lists by run name."""
    recorded: dict[str, list[list[str]]] = {}
    for run in _runs(root):
        env = StubEnv(root / run.name)
        ssh = env.home / ".ssh"
        ssh.mkdir(exist_ok=True)
        (ssh / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake dev@box\n")
        env.scenario(run.rules())
        env.set_flags(*run.flags)
        for _ in range(2 if run.again else 1):
            result = env.run(sc.script(run.script), *run.args, env=run.env)
            if result.returncode != 0 and run.name not in ("deploy-bad-prod", "canary-roll-back"):
                raise AssertionError(f"{run.name}: {result.stdout}\n{result.stderr}")
        recorded[run.name] = env.calls("az")
    return recorded
