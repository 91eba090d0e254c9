"""Scenario rules for the stub `az`: an Azure subscription as the CLI shows it, with state flags
(``group``, ``plan``, ``app``, ``app.config``, ``app.settings``, ``slot``, ...) that create
commands set, so that a first run against an empty subscription and a re-run differ exactly as
they do on Azure. Answers follow the real CLI's JSON (trimmed to the fields that matter) and its
``ERROR: (Code) message`` lines with exit status 3 for missing resources.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from stubkit import REPO

SCRIPTS = REPO / "deploy" / "azure"
OWN_SCRIPTS = (
    "common.sh", "provision.sh", "deploy.sh", "rollback.sh", "smoke.sh", "logs.sh",
    "teardown.sh", "agent.sh", "agent-teardown.sh", "agent-register.sh",
)  # fmt: skip
# (aks.sh and acr-build.sh: tests/k8s/test_aks_scripts.py)
Rule = dict[str, Any]

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RG = "Azuredevops"
APP = "flask-ml-service"
PLAN = "flask-ml-service-plan"
LOCATION = "centralus"
SLOT = "staging"
HOST = f"{APP}.azurewebsites.net"
SLOT_HOST = f"{APP}-{SLOT}.azurewebsites.net"
STARTUP = (
    "gunicorn --config python:ml_service.server.gunicorn_config --bind=0.0.0.0:${PORT:-8000} "
    "ml_service.http.app:app"
)
APP_VAULT = "kv-ml-" + hashlib.sha256(f"{SUBSCRIPTION}/{RG}/{APP}".encode()).hexdigest()[:10]
VAULT_URI = f"https://{APP_VAULT}.vault.azure.net/"
API_KEY = "Zk4vQ1ExampleOnlyKey0x9c2f7aL3mN8pR5tW1yB6dH0"
SECRET_NAME = "ml-service-api-keys"
SETTINGS = {
    "SCM_DO_BUILD_DURING_DEPLOYMENT": "true",
    "ML_SERVICE_MODEL_DIR": "models/housing",
    "ML_SERVICE_LOG_LEVEL": "info",
    "ML_SERVICE_API_KEYS": f"@Microsoft.KeyVault(SecretUri={VAULT_URI}secrets/{SECRET_NAME}/)",
}
OPERATOR = "7a1c0e52-9d3b-4c8e-b6f1-2e4d5a6b7c8d"
APP_PRINCIPAL = "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"
SLOT_PRINCIPAL = "2f3a4b5c-6d7e-4f8a-9b0c-1d2e3f4a5b6c"
KEY_SHA256 = hashlib.sha256(API_KEY.encode()).hexdigest()
# The state flags of an app `provision.sh` has made.
PROVISIONED = (
    "group", "plan", "app", "app.https", "app.config", "app.settings", "app.identity",
    "slot", "slot.https", "slot.config", "slot.settings", "slot.identity",
    "kv", "apikey", "identity.staging", "identity.production", "roles",
)  # fmt: skip
VM = "agentVM"
PRINCIPAL = "5d2c6a8e-8f3b-4f1e-9a55-0c1f7e2b3d44"


def script(name: str) -> Path:
    """A script of deploy/azure."""
    return SCRIPTS / name


def rid(provider_path: str) -> str:
    """A full resource id in the test resource group."""
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/{provider_path}"


def not_found(kind: str, name: str) -> Rule:
    """The answer of `az ... show` for a resource that does not exist."""
    msg = (
        f"The Resource '{kind}/{name}' under resource group '{RG}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )
    return {
        "exit": 3,
        "stderr": f"ERROR: (ResourceNotFound) {msg}\nCode: ResourceNotFound\nMessage: {msg}\n",
    }


def az(args: list[str], answer: Rule | None = None, **match: Any) -> Rule:
    """One `az` rule: command words `args`, extra matching keys, and its answer.

    ``where`` (a dict of ``contains`` / ``lacks`` lists) is merged into the same keys.
    """
    where = match.pop("where", {})
    for key in ("contains", "lacks"):
        merged = [*where.get(key, []), *match.pop(key, [])]
        if merged:
            match[key] = merged
    rule: Rule = {"cmd": "az", "args": args, **match}
    rule.update(answer or {"json": None})
    return rule


def group_json() -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}",
        "location": LOCATION,
        "managedBy": None,
        "name": RG,
        "properties": {"provisioningState": "Succeeded"},
        "tags": None,
        "type": "Microsoft.Resources/resourceGroups",
    }


def plan_json(sku: str = "P1v2", linux: bool = True, sites: int = 1) -> dict[str, Any]:
    tier = {"P": "PremiumV2", "S": "Standard", "B": "Basic", "F": "Free"}[sku[0]]
    return {
        "id": rid(f"Microsoft.Web/serverfarms/{PLAN}"),
        "kind": "linux" if linux else "app",
        "location": "Central US",
        "name": PLAN,
        "numberOfSites": sites,
        "numberOfWorkers": 1,
        "provisioningState": "Succeeded",
        "reserved": linux,
        "resourceGroup": RG,
        "sku": {"capacity": 1, "family": sku[0], "name": sku, "size": sku, "tier": tier},
        "status": "Ready",
        "type": "Microsoft.Web/serverfarms",
    }


def site_json(
    slot: str | None = None, https: bool = True, state: str = "Running", tags: Any = None
) -> dict[str, Any]:
    name = APP if slot is None else f"{APP}/{slot}"
    host = HOST if slot is None else f"{APP}-{slot}.azurewebsites.net"
    path = f"Microsoft.Web/sites/{APP}" + ("" if slot is None else f"/slots/{slot}")
    return {
        "defaultHostName": host,
        "enabled": True,
        "enabledHostNames": [host, host.replace(".azurewebsites", ".scm.azurewebsites")],
        "hostNames": [host],
        "httpsOnly": https,
        "id": rid(path),
        "kind": "app,linux",
        "location": "Central US",
        "name": name,
        "repositorySiteName": APP,
        "reserved": True,
        "resourceGroup": RG,
        "serverFarmId": rid(f"Microsoft.Web/serverfarms/{PLAN}"),
        "state": state,
        "tags": tags,
        "type": "Microsoft.Web/sites" + ("" if slot is None else "/slots"),
    }


def config_json(configured: bool) -> dict[str, Any]:
    return {
        "alwaysOn": True,
        "appCommandLine": STARTUP,
        "ftpsState": "Disabled" if configured else "FtpsOnly",
        "healthCheckPath": "/health/ready" if configured else None,
        "http20Enabled": True,
        "linuxFxVersion": "PYTHON|3.11",
        "minTlsVersion": "1.2",
        "name": APP,
        "numberOfWorkers": 1,
        "resourceGroup": RG,
        "type": "Microsoft.Web/sites/config",
    }


def settings_json(configured: bool) -> list[dict[str, Any]]:
    if not configured:
        return []
    return [{"name": k, "slotSetting": False, "value": v} for k, v in SETTINGS.items()]


def site_rules(slot: str | None) -> list[Rule]:
    """Rules of one site (production or the slot): show, config, settings, https."""
    key = "app" if slot is None else "slot"
    kind = f"Microsoft.Web/sites/{APP}" + ("" if slot is None else f"/slots/{slot}")
    where: dict[str, Any] = {"contains": ["--slot", slot]} if slot else {"lacks": ["--slot"]}
    tag = {"mlServiceRollback": "available"}
    used = {"mlServiceRollback": "used"}
    return [
        az(
            ["webapp", "show"],
            not_found("Microsoft.Web/sites", kind.split("sites/")[1]),
            unless=[key],
            where=where,
        ),
        az(
            ["webapp", "show"],
            {"json": site_json(slot, tags=tag)},
            **{"if": [key, f"{key}.https", "rollback.available"]},
            where=where,
        ),
        az(
            ["webapp", "show"],
            {"json": site_json(slot, tags=used)},
            **{"if": [key, f"{key}.https", "rollback.used"]},
            where=where,
        ),
        az(
            ["webapp", "show"],
            {"json": site_json(slot)},
            **{"if": [key, f"{key}.https"]},
            where=where,
        ),
        az(
            ["webapp", "show"], {"json": site_json(slot, https=False)}, **{"if": [key]}, where=where
        ),
        az(
            ["webapp", "config", "show"],
            {"json": config_json(True)},
            **{"if": [f"{key}.config"]},
            where=where,
        ),
        az(
            ["webapp", "config", "show"], {"json": config_json(False)}, **{"if": [key]}, where=where
        ),
        az(
            ["webapp", "config", "set"],
            {"json": config_json(True)},
            sets=[f"{key}.config"],
            where=where,
        ),
        az(
            ["webapp", "update"],
            {"json": site_json(slot, tags=tag)},
            contains=["--set", "tags.mlServiceRollback=available"],
            sets=["rollback.available"],
            clears=["rollback.used"],
            where=where,
        ),
        az(
            ["webapp", "update"],
            {"json": site_json(slot, tags=used)},
            contains=["--set", "tags.mlServiceRollback=used"],
            sets=["rollback.used"],
            clears=["rollback.available"],
            where=where,
        ),
        az(
            ["webapp", "update"],
            {"json": site_json(slot)},
            contains=["--https-only"],
            sets=[f"{key}.https"],
            where=where,
        ),
        az(
            ["webapp", "config", "appsettings", "list"],
            {"json": settings_json(True)},
            **{"if": [f"{key}.settings"]},
            where=where,
        ),
        az(
            ["webapp", "config", "appsettings", "list"],
            {"json": settings_json(False)},
            **{"if": [key]},
            where=where,
        ),
        az(
            ["webapp", "config", "appsettings", "set"],
            {"json": settings_json(True)},
            sets=[f"{key}.settings"],
            where=where,
        ),
    ]


def app_service() -> list[Rule]:
    """Everything provision, deploy, rollback, smoke, logs and teardown ask of `az`."""
    rules: list[Rule] = [
        az(
            ["group", "show"],
            {
                "exit": 3,
                "stderr": (
                    f"ERROR: (ResourceGroupNotFound) Resource group '{RG}' could not be found.\n"
                    "Code: ResourceGroupNotFound\n"
                    f"Message: Resource group '{RG}' could not be found.\n"
                ),
            },
            unless=["group"],
        ),
        az(["group", "show"], {"json": group_json()}),
        az(["group", "create"], {"json": group_json()}, sets=["group"]),
        az(["group", "delete"], {"json": None}, clears=["group"]),
        az(
            ["appservice", "plan", "show"],
            not_found("Microsoft.Web/serverFarms", PLAN),
            unless=["plan"],
        ),
        az(["appservice", "plan", "show"], {"json": plan_json(sites=0)}, unless=["app"]),
        az(["appservice", "plan", "show"], {"json": plan_json()}),
        az(["appservice", "plan", "create"], {"json": plan_json(sites=0)}, sets=["plan"]),
        az(["appservice", "plan", "update"], {"json": plan_json()}),
        az(["appservice", "plan", "delete"], {"json": None}, clears=["plan"]),
        az(["webapp", "create"], {"json": site_json()}, sets=["app", "app.https"]),
        az(["webapp", "delete"], {"json": None}, clears=["app", "slot"]),
        az(
            ["webapp", "deployment", "slot", "list"],
            {"json": [site_json(SLOT) | {"name": SLOT}]},
            **{"if": ["slot"]},
        ),
        az(["webapp", "deployment", "slot", "list"], {"json": []}),
        az(
            ["webapp", "deployment", "slot", "create"],
            {"json": site_json(SLOT, https=False)},
            sets=["slot", "slot.config", "slot.settings"],
        ),
        az(["webapp", "deployment", "slot", "swap"], {"json": None}, sets=["swapped"]),
        az(
            ["webapp", "deploy"],
            {"json": {"active": True, "complete": True, "status": 4}},
            sets=["deployed"],
        ),
        az(["webapp", "start"], {"json": None}, sets=["started"]),
        az(
            ["webapp", "log", "show"],
            {
                "json": {
                    "applicationLogs": {"fileSystem": {"level": "Off"}},
                    "httpLogs": {
                        "fileSystem": {"enabled": True, "retentionInDays": 3, "retentionInMb": 100}
                    },
                }
            },
            **{"if": ["logging"]},
        ),
        az(
            ["webapp", "log", "show"],
            {
                "json": {
                    "applicationLogs": {"fileSystem": {"level": "Off"}},
                    "httpLogs": {
                        "fileSystem": {
                            "enabled": False,
                            "retentionInDays": None,
                            "retentionInMb": 35,
                        }
                    },
                }
            },
            **{"if": ["app"]},
        ),
        az(["webapp", "log", "show"], not_found("Microsoft.Web/sites", APP)),
        az(["webapp", "log", "config"], {"json": None}, sets=["logging"]),
        az(["webapp", "log", "tail"], {"stdout": "2026-01-01T00:00:00 ml-service started\n"}),
        az(["webapp", "log", "download"], {"json": None}),
        az(["resource", "list"], {"json": []}),
        *traffic_routing(),
    ]
    return site_rules(SLOT) + site_rules(None) + rules + vault() + identities() + account()


def traffic_routing() -> list[Rule]:
    """`az webapp traffic-routing`: the share of production's traffic sent to the slot."""
    return [
        az(
            ["webapp", "traffic-routing", "set"],
            {"json": [{"actionHostName": SLOT_HOST, "name": SLOT, "reroutePercentage": 10.0}]},
            sets=["routed"],
        ),
        az(["webapp", "traffic-routing", "clear"], {"json": []}, clears=["routed"]),
    ]


def vault() -> list[Rule]:
    """The app's Key Vault (RBAC mode) and the API key secret in it."""
    vault_id = rid(f"Microsoft.KeyVault/vaults/{APP_VAULT}")
    vault_json = {
        "id": vault_id,
        "name": APP_VAULT,
        "properties": {"enableRbacAuthorization": True, "vaultUri": VAULT_URI},
    }
    secret_id = f"{VAULT_URI}secrets/{SECRET_NAME}/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    return [
        az(["keyvault", "show"], not_found("Microsoft.KeyVault/vaults", APP_VAULT), unless=["kv"]),
        az(["keyvault", "show"], {"json": vault_json}),
        az(["keyvault", "create"], {"json": vault_json}, sets=["kv"]),
        az(["keyvault", "delete"], {"json": None}, clears=["kv"], sets=["kv.deleted"]),
        az(
            ["keyvault", "show-deleted"],
            {"json": {"name": APP_VAULT, "properties": {}}},
            **{"if": ["kv.deleted"]},
        ),
        az(
            ["keyvault", "show-deleted"],
            {
                "exit": 3,
                "stderr": "ERROR: (DeletedVaultNotFound) Deleted vault not found\n"
                "Code: DeletedVaultNotFound\nMessage: Deleted vault not found\n",
            },
        ),
        az(["keyvault", "purge"], {"json": None}, clears=["kv.deleted"]),
        az(
            ["keyvault", "secret", "list"],
            {"json": [{"id": secret_id.rsplit("/", 1)[0], "name": SECRET_NAME}]},
            **{"if": ["apikey"]},
        ),
        az(["keyvault", "secret", "list"], {"json": []}),
        az(["keyvault", "secret", "set"], {"json": None, "read_stdin": True}, sets=["apikey"]),
        az(
            ["keyvault", "secret", "show"],
            {"json": {"id": secret_id, "name": SECRET_NAME, "value": API_KEY}},
            **{"if": ["apikey"]},
        ),
        az(
            ["keyvault", "secret", "show"],
            {
                "exit": 3,
                "stderr": f"ERROR: (SecretNotFound) A secret with (name/id) {SECRET_NAME} was not "
                "found in this key vault.\nCode: SecretNotFound\n",
            },
        ),
    ]


def identities() -> list[Rule]:
    """Managed identities (the sites' own, the deployment identities) and role assignments."""
    rules: list[Rule] = [
        az(
            ["ad", "signed-in-user", "show"], {"json": {"id": OPERATOR, "userPrincipalName": "dev"}}
        ),
        az(["role", "assignment", "list"], {"json": [{"id": "ra-0"}]}, **{"if": ["roles"]}),
        az(
            ["role", "assignment", "list"],
            {"json": [{"id": "ra-1"}]},
            if_keyed=["--assignee", "--role", "--scope"],
        ),
        az(["role", "assignment", "list"], {"json": []}),
        az(
            ["role", "assignment", "create"],
            {"json": {"id": "ra-new"}},
            sets_keyed=["--assignee-object-id", "--role", "--scope"],
        ),
    ]
    for slot, key, principal in ((SLOT, "slot.identity", SLOT_PRINCIPAL),
                                 (None, "app.identity", APP_PRINCIPAL)):  # fmt: skip
        where: dict[str, Any] = {"contains": ["--slot", slot]} if slot else {"lacks": ["--slot"]}
        identity = {"principalId": principal, "tenantId": TENANT, "type": "SystemAssigned"}
        rules += [
            az(["webapp", "identity", "show"], {"json": identity}, **{"if": [key]}, where=where),
            az(["webapp", "identity", "show"], {"stdout": ""}, where=where),
            az(["webapp", "identity", "assign"], {"json": identity}, sets=[key], where=where),
        ]
    for role in ("staging", "production", "aks"):
        name = f"{APP}-deploy-{role}" if role != "aks" else "ml-service-deploy-aks"
        flag = f"identity.{role}"
        body = {
            "clientId": f"c11e{len(role):04d}-0000-4000-8000-00000000000{len(role)}",
            "id": rid(f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"),
            "name": name,
            "principalId": f"9a9a{len(role):04d}-0000-4000-8000-00000000000{len(role)}",
        }
        rules += [
            az(
                ["identity", "show"],
                not_found("Microsoft.ManagedIdentity/userAssignedIdentities", name),
                unless=[flag],
                options={"--name": name},
            ),
            az(["identity", "show"], {"json": body}, options={"--name": name}),
            az(["identity", "create"], {"json": body}, sets=[flag], options={"--name": name}),
            az(["identity", "delete"], {"json": None}, clears=[flag], options={"--name": name}),
        ]
    # Any other name (apps named from the environment): one identity per name.
    other = {
        "clientId": "c11e0000-0000-4000-8000-000000000000",
        "principalId": "9a9a0000-0000-4000-8000-000000000000",
    }
    rules += [
        az(["identity", "show"], {"json": other}, if_keyed=["--name"]),
        az(
            ["identity", "show"], not_found("Microsoft.ManagedIdentity/userAssignedIdentities", "x")
        ),
        az(["identity", "create"], {"json": other}, sets_keyed=["--name"]),
    ]
    return rules


def account() -> list[Rule]:
    """`az account show` for a logged-in user."""
    return [
        az(
            ["account", "show"],
            {
                "json": {
                    "environmentName": "AzureCloud",
                    "id": SUBSCRIPTION,
                    "isDefault": True,
                    "name": "Pay-As-You-Go",
                    "state": "Enabled",
                    "tenantId": TENANT,
                    "user": {"name": "dev@example.com", "type": "user"},
                }
            },
        )
    ]


def agent() -> list[Rule]:
    """Everything agent.sh and agent-teardown.sh ask of `az`."""
    vm_json = {
        "id": rid(f"Microsoft.Compute/virtualMachines/{VM}"),
        "identity": {"principalId": PRINCIPAL, "tenantId": TENANT, "type": "SystemAssigned"},
        "location": LOCATION,
        "name": VM,
        "provisioningState": "Succeeded",
        "publicIps": "20.84.1.17",
        "resourceGroup": RG,
        "type": "Microsoft.Compute/virtualMachines",
    }
    policies = {"accessPolicies": [{"objectId": PRINCIPAL, "permissions": {"secrets": ["get"]}}]}
    rules: list[Rule] = [
        az(
            ["keyvault", "show"],
            {
                "json": {
                    "id": rid("Microsoft.KeyVault/vaults/kv"),
                    "name": "kv",
                    "properties": policies,
                }
            },
            **{"if": ["vault", "policy"]},
        ),
        az(["vm", "show"], not_found("Microsoft.Compute/virtualMachines", VM), unless=["vm"]),
        az(["vm", "show"], {"json": vm_json}),
        az(
            ["vm", "create"],
            {
                "json": {
                    "fqdns": "",
                    "id": vm_json["id"],
                    "identity": {"systemAssignedIdentity": PRINCIPAL},
                    "location": LOCATION,
                    "powerState": "VM running",
                    "privateIpAddress": "10.0.0.4",
                    "publicIpAddress": "20.84.1.17",
                    "resourceGroup": RG,
                }
            },
            sets=["vm", "nic", "pip", "nsg", "vnet", "disk"],
        ),
        az(["vm", "delete"], {"json": None}, clears=["vm", "nic", "disk"]),
    ]
    for words, flag, kind, name in (
        (["network", "nic"], "nic", "Microsoft.Network/networkInterfaces", f"{VM}VMNic"),
        (["network", "public-ip"], "pip", "Microsoft.Network/publicIPAddresses", f"{VM}PublicIP"),
        (["network", "nsg"], "nsg", "Microsoft.Network/networkSecurityGroups", f"{VM}NSG"),
        (["network", "vnet"], "vnet", "Microsoft.Network/virtualNetworks", f"{VM}VNET"),
        (["disk"], "disk", "Microsoft.Compute/disks", f"{VM}OsDisk"),
        (["keyvault"], "vault", "Microsoft.KeyVault/vaults", "kv"),
    ):
        rules += [
            az([*words, "show"], not_found(kind, name), unless=[flag]),
            az([*words, "show"], {"json": {"id": rid(f"{kind}/{name}"), "name": name}}),
            az(
                [*words, "delete"],
                {"json": None},
                clears=[flag],
                sets=["vault.deleted"] if flag == "vault" else [],
            ),
        ]
    rules += [
        az(
            ["keyvault", "create"],
            {
                "json": {
                    "id": rid("Microsoft.KeyVault/vaults/kv"),
                    "location": LOCATION,
                    "name": "kv",
                    "properties": {
                        "enableRbacAuthorization": False,
                        "softDeleteRetentionInDays": 7,
                    },
                }
            },
            sets=["vault"],
        ),
        az(["keyvault", "secret", "set"], {"json": None, "read_stdin": True}, sets=["secret"]),
        az(["keyvault", "set-policy"], {"json": None}, sets=["policy"]),
        az(
            ["keyvault", "show-deleted"],
            {"json": {"name": "kv", "properties": {}}},
            **{"if": ["vault.deleted"]},
        ),
        az(
            ["keyvault", "show-deleted"],
            {
                "exit": 3,
                "stderr": "ERROR: (DeletedVaultNotFound) Deleted vault not found\n"
                "Code: DeletedVaultNotFound\nMessage: Deleted vault not found\n",
            },
        ),
        az(["keyvault", "purge"], {"json": None}, clears=["vault.deleted"]),
    ]
    rules += [
        az(
            ["keyvault", "secret", "list"],
            {
                "json": [
                    {
                        "id": "https://kv.vault.azure.net/secrets/ado-agent-pat",
                        "name": "ado-agent-pat",
                    }
                ]
            },
            **{"if": ["secret"]},
        ),
        az(["keyvault", "secret", "list"], {"json": []}),
        az(
            ["keyvault", "secret", "list-deleted"],
            {"json": [{"name": "ado-agent-pat", "recoveryId": "https://kv/deletedsecrets/x"}]},
            **{"if": ["secret.deleted"]},
        ),
        az(["keyvault", "secret", "list-deleted"], {"json": []}),
        az(["keyvault", "secret", "purge"], {"json": None}, clears=["secret.deleted"]),
        az(["keyvault", "delete-policy"], {"json": None}, clears=["policy"]),
    ]
    return account() + app_service_group_only() + rules


def app_service_group_only() -> list[Rule]:
    """Only the resource-group rules (for scripts that need nothing else of App Service)."""
    return [r for r in app_service() if r["args"][0] == "group"]


def curl_ready(after: int = 0) -> list[Rule]:
    """`curl` probes of the readiness endpoint: 503 `after` times, then 200."""
    rules: list[Rule] = []
    if after:
        rules.append({"cmd": "curl", "args": [], "stdout": "503", "times": after})
    rules.append({"cmd": "curl", "args": [], "stdout": "200"})
    return rules


def predict(ok: bool = True, host: str | None = None) -> list[Rule]:
    """`ml-service predict`: succeeds printing a prediction, or fails like the real client."""
    match: Rule = {"cmd": "ml-service", "args": ["predict"]}
    if host:
        match["options"] = {"--url": f"https://{host}"}
    if ok:
        return [match | {"stdout": '{"prediction": [24.0193]}\n'}]
    return [
        match
        | {
            "exit": 1,
            "stderr": "ml-service predict: error: service answered 503 "
            "after 5 attempts: model not ready\n",
        }
    ]


COMPARE_TABLE = (
    "metric  champion  challenger  difference  95% interval\n"
    "rmse    3.61      {rmse}      {diff}      [{lo}, {hi}]\n"
    "decision: {decision}\n"
)


def compare(status: int = 0) -> list[Rule]:
    """`ml-service compare`: 0 promote, 3 keep the champion, 1 could not compare."""
    if status == 1:
        return [{"cmd": "ml-service", "args": ["compare"], "exit": 1,
                 "stderr": "ml-service compare: error: cannot read the champion\n"}]  # fmt: skip
    better = status == 0
    table = COMPARE_TABLE.format(
        rmse="3.42" if better else "3.88",
        diff="-0.19" if better else "+0.27",
        lo="-0.31" if better else "0.12",
        hi="-0.07" if better else "0.41",
        decision="promote" if better else "keep the champion (rmse is worse by 0.27)",
    )
    return [{"cmd": "ml-service", "args": ["compare"], "stdout": table, "exit": status}]


def watch(status: int = 0) -> list[Rule]:
    """`ml-service watch`: 0 healthy, 3 unhealthy (too many errors), 1 could not watch."""
    lines = {
        0: "healthy: within the limits (812 prediction requests in 300 s, 0.12% 5xx, p99 41 ms)",
        3: "unhealthy: 5xx share 7.40% is above the limit of 1.00% "
        "(95 prediction requests in 45 s, 7.40% 5xx, p99 38 ms)",
        1: "",
    }
    rule: Rule = {"cmd": "ml-service", "args": ["watch"], "exit": status}
    rule["stdout"] = lines[status] + "\n" if lines[status] else ""
    if status == 1:
        rule["stderr"] = "ml-service watch: error: cannot reach https://x/metrics\n"
    return [rule]
