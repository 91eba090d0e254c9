"""Offline tests of the App Service scripts (provision, deploy, rollback, smoke, logs, teardown)
against the stub `az`, `curl` and `ml-service`: exact call sequences on first runs and re-runs,
and the failure paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import azure_scenarios as sc
import pytest
from stubkit import StubEnv, option

READ_ONLY = ("show", "list", "show-deleted")

PROVISION_FIRST_RUN = [
    "group show",
    "group create",
    "appservice plan show",
    "appservice plan create",
    "webapp show",
    "webapp create",
    "account show",
    "keyvault show",
    "keyvault create",
    "keyvault show",
    "account show",
    "ad signed-in-user show",
    "role assignment list",
    "role assignment create",
    "keyvault secret list",
    "keyvault secret set",
    "webapp identity show",
    "webapp identity assign",
    "role assignment list",
    "role assignment create",
    "webapp config show",
    "webapp config set",
    "webapp show",
    "webapp config appsettings list",
    "webapp config appsettings set",
    "webapp deployment slot list",
    "webapp deployment slot create",
    "webapp identity show",
    "webapp identity assign",
    "role assignment list",
    "role assignment create",
    "webapp config show",
    "webapp show",
    "webapp update",
    "webapp config appsettings list",
    "webapp show",
    "identity show",
    "identity create",
    "identity show",
    "role assignment list",
    "role assignment create",
    "role assignment list",
    "role assignment create",
    "role assignment list",
    "role assignment create",
    "identity show",
    "identity create",
    "identity show",
    "role assignment list",
    "role assignment create",
    "role assignment list",
    "role assignment create",
    "webapp show",
]

PROVISION_RE_RUN = [
    "group show",
    "appservice plan show",
    "webapp show",
    "account show",
    "keyvault show",
    "account show",
    "ad signed-in-user show",
    "role assignment list",
    "keyvault secret list",
    "webapp identity show",
    "role assignment list",
    "webapp config show",
    "webapp show",
    "webapp config appsettings list",
    "webapp deployment slot list",
    "webapp identity show",
    "role assignment list",
    "webapp config show",
    "webapp show",
    "webapp config appsettings list",
    "webapp show",
    "identity show",
    "role assignment list",
    "role assignment list",
    "role assignment list",
    "identity show",
    "role assignment list",
    "role assignment list",
    "webapp show",
]

PROVISIONED = sc.PROVISIONED


def changing(commands: list[str]) -> list[str]:
    """The commands that change something (not show/list)."""
    return [c for c in commands if c.split()[-1] not in READ_ONLY]


def the_call(env: StubEnv, words: str, slot: bool | None = None) -> list[str]:
    """The one recorded az call with command words `words` (optionally with/without --slot)."""
    found = [
        argv
        for argv, cmd in zip(env.calls("az"), env.commands("az"), strict=True)
        if cmd == words and (slot is None or ("--slot" in argv) == slot)
    ]
    assert len(found) == 1, f"expected one '{words}' call, got {found}"
    return found[0]


@pytest.fixture
def deploy_env(stub_env: StubEnv, tmp_path: Path) -> tuple[StubEnv, dict[str, str]]:
    """A provisioned app, a package, fast readiness polling."""
    package = tmp_path / "ml-service-app.zip"
    package.write_bytes(b"PK\x05\x06" + bytes(18))
    stub_env.set_flags(*PROVISIONED)
    env = {
        "ML_SERVICE_PACKAGE": str(package),
        "DEPLOY_POLL_INTERVAL": "0",
        "DEPLOY_READY_TIMEOUT": "5",
    }
    return stub_env, env


# --- provision -------------------------------------------------------------------------------


def test_provision_first_run_creates_everything_in_order(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    result = stub_env.run(sc.script("provision.sh"))
    assert result.returncode == 0, result.stderr
    assert stub_env.commands() == PROVISION_FIRST_RUN
    create = the_call(stub_env, "webapp create")
    assert option(create, "--runtime") == "PYTHON:3.11"
    assert option(create, "--startup-file") == sc.STARTUP
    assert option(create, "--https-only") == "true"
    plan = the_call(stub_env, "appservice plan create")
    assert "--is-linux" in plan
    assert option(plan, "--sku") == "P1V2"
    config = the_call(stub_env, "webapp config set", slot=False)
    assert option(config, "--generic-configurations") == '{"healthCheckPath": "/health/ready"}'
    assert option(config, "--ftps-state") == "Disabled"
    settings = the_call(stub_env, "webapp config appsettings set")
    assert settings[settings.index("--settings") + 1 : settings.index("--output")] == [
        f"{k}={v}" for k, v in sc.SETTINGS.items()
    ]
    slot = the_call(stub_env, "webapp deployment slot create")
    assert option(slot, "--slot") == "staging"
    assert "https://flask-ml-service.azurewebsites.net" in result.stdout


def test_provision_re_run_changes_nothing(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    assert stub_env.run(sc.script("provision.sh")).returncode == 0
    stub_env.clear_log()
    result = stub_env.run(sc.script("provision.sh"))
    assert result.returncode == 0, result.stderr
    assert stub_env.commands() == PROVISION_RE_RUN
    assert changing(stub_env.commands()) == []
    assert "+ az" not in result.stdout


def test_provision_names_come_from_the_environment(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    env = {
        "AZURE_RESOURCE_GROUP": "rg-ml",
        "AZURE_APP_NAME": "ml-prod-42",
        "AZURE_LOCATION": "westeurope",
        "AZURE_PLAN_SKU": "S1",
    }
    assert stub_env.run(sc.script("provision.sh"), env=env).returncode == 0
    group = the_call(stub_env, "group create")
    assert option(group, "--name") == "rg-ml"
    assert option(group, "--location") == "westeurope"
    plan = the_call(stub_env, "appservice plan create")
    assert option(plan, "--name") == "ml-prod-42-plan"
    assert option(plan, "--sku") == "S1"
    assert all(option(a, "--name") != "flask-ml-service" for a in stub_env.calls("az"))


def test_provision_changes_a_plan_of_another_sku(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("provision.sh"), env={"AZURE_PLAN_SKU": "P0V3"})
    assert result.returncode == 0, result.stderr
    assert changing(stub_env.commands()) == ["appservice plan update"]
    assert option(the_call(stub_env, "appservice plan update"), "--sku") == "P0V3"


def test_provision_refuses_a_sku_without_slots(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    result = stub_env.run(sc.script("provision.sh"), env={"AZURE_PLAN_SKU": "B1"})
    assert result.returncode != 0
    assert "no deployment slots" in result.stderr
    assert stub_env.calls("az") == []


def test_provision_refuses_a_windows_plan(stub_env: StubEnv) -> None:
    windows = sc.az(["appservice", "plan", "show"], {"json": sc.plan_json(linux=False)})
    stub_env.scenario([windows, *sc.app_service()])
    stub_env.set_flags("group", "plan")
    result = stub_env.run(sc.script("provision.sh"))
    assert result.returncode == 1
    assert "not a Linux plan" in result.stderr
    assert changing(stub_env.commands()) == []


def test_provision_treats_an_empty_show_answer_as_missing(stub_env: StubEnv) -> None:
    # Some CLI versions answer `appservice plan show` for a missing plan with nothing, exit 0.
    empty = sc.az(["appservice", "plan", "show"], {"stdout": ""}, unless=["plan"])
    stub_env.scenario([empty, *sc.app_service()])
    assert stub_env.run(sc.script("provision.sh")).returncode == 0
    assert "appservice plan create" in stub_env.commands()


def test_provision_stops_with_a_clear_message_when_a_call_fails(stub_env: StubEnv) -> None:
    quota = sc.az(["appservice", "plan", "create"], {
        "exit": 1,
        "stderr": "ERROR: Operation cannot be completed without additional quota.\n",
    })  # fmt: skip
    stub_env.scenario([quota, *sc.app_service()])
    result = stub_env.run(sc.script("provision.sh"))
    assert result.returncode == 1
    assert "additional quota" in result.stderr
    assert "'az appservice plan ...' failed" in result.stderr
    assert stub_env.commands()[-1] == "appservice plan create"


def test_provision_stops_when_not_logged_in(stub_env: StubEnv) -> None:
    login = sc.az(["group", "show"], {
        "exit": 1, "stderr": "ERROR: Please run 'az login' to setup account.\n",
    })  # fmt: skip
    stub_env.scenario([login, *sc.app_service()])
    result = stub_env.run(sc.script("provision.sh"))
    assert result.returncode == 1
    assert "az login" in result.stderr
    assert stub_env.commands() == ["group show"]


# --- deploy ----------------------------------------------------------------------------------


def test_deploy_waits_for_readiness_then_smoke_tests_then_swaps(
    deploy_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = deploy_env
    env.scenario(sc.app_service() + sc.curl_ready(after=2) + sc.predict())
    result = env.run(sc.script("deploy.sh"), env=extra)
    assert result.returncode == 0, result.stderr
    assert env.commands() == [
        "webapp show",
        "webapp show",
        "account show",
        "keyvault secret show",
        "webapp deploy",
        "webapp deployment slot swap",
        "webapp update",
    ]
    deploy = the_call(env, "webapp deploy")
    assert option(deploy, "--slot") == "staging"
    assert option(deploy, "--type") == "zip"
    assert option(deploy, "--src-path") == extra["ML_SERVICE_PACKAGE"]
    probes = env.calls("curl")
    assert len(probes) == 3
    assert all(p[-1] == f"https://{sc.SLOT_HOST}/health/ready" for p in probes)
    assert env.calls("ml-service") == [
        ["predict", "--url", f"https://{sc.SLOT_HOST}"],
        ["predict", "--url", f"https://{sc.HOST}"],
    ]
    # Every smoke test sends the key read from Key Vault, through its environment only.
    assert [e["env_sha256"] for e in env.entries() if e["cmd"] == "ml-service"] == [
        {"ML_SERVICE_API_KEY": sc.KEY_SHA256}
    ] * 2
    assert sc.API_KEY not in result.stdout + result.stderr + env.log_text()
    order = [e["cmd"] + " " + " ".join(e["argv"][:2]) for e in env.entries()]
    assert order.index("ml-service predict --url") < order.index("az webapp deployment")
    swap = the_call(env, "webapp deployment slot swap")
    assert option(swap, "--target-slot") == "production"
    assert "rollback.available" in env.flags()


def test_deploy_smoke_failure_leaves_production_untouched(
    deploy_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = deploy_env
    env.scenario(sc.app_service() + sc.curl_ready() + sc.predict(ok=False))
    result = env.run(sc.script("deploy.sh"), env=extra)
    assert result.returncode == 1
    assert "production untouched" in result.stderr
    assert "swap" not in " ".join(env.commands())
    assert changing(env.commands()) == ["webapp deploy"]


def test_deploy_gives_up_at_the_readiness_deadline(
    deploy_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = deploy_env
    never = [{"cmd": "curl", "args": [], "stdout": "503"}]
    env.scenario(sc.app_service() + never + sc.predict())
    extra |= {"DEPLOY_READY_TIMEOUT": "1", "DEPLOY_POLL_INTERVAL": "0.2"}
    result = env.run(sc.script("deploy.sh"), env=extra, timeout=30)
    assert result.returncode == 1
    assert "never became ready" in result.stderr
    assert "last answer '503'" in result.stdout
    assert env.calls("ml-service") == []
    assert changing(env.commands()) == ["webapp deploy"]


def test_deploy_swaps_back_when_production_fails_after_the_swap(
    deploy_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = deploy_env
    rules = sc.predict(host=sc.SLOT_HOST) + sc.predict(ok=False, host=sc.HOST)
    env.scenario(sc.app_service() + sc.curl_ready() + rules)
    result = env.run(sc.script("deploy.sh"), env=extra)
    assert result.returncode == 1
    assert "rolled back" in result.stderr
    assert changing(env.commands()) == [
        "webapp deploy",
        "webapp deployment slot swap",
        "webapp deployment slot swap",
    ]


def test_deploy_without_package_says_how_to_build_it(stub_env: StubEnv, tmp_path: Path) -> None:
    stub_env.scenario(sc.app_service())
    result = stub_env.run(
        sc.script("deploy.sh"), env={"ML_SERVICE_PACKAGE": str(tmp_path / "missing.zip")}
    )
    assert result.returncode == 1
    assert "make package" in result.stderr
    assert stub_env.calls() == []


def test_deploy_before_provision_says_how_to_provision(stub_env: StubEnv, tmp_path: Path) -> None:
    package = tmp_path / "app.zip"
    package.write_bytes(b"PK")
    stub_env.scenario(sc.app_service())
    result = stub_env.run(sc.script("deploy.sh"), env={"ML_SERVICE_PACKAGE": str(package)})
    assert result.returncode == 1
    assert "make provision" in result.stderr
    assert changing(stub_env.commands()) == []


def test_deploy_zip_failure_is_reported(deploy_env: tuple[StubEnv, dict[str, str]]) -> None:
    env, extra = deploy_env
    failed = sc.az(["webapp", "deploy"], {
        "exit": 1,
        "stderr": "ERROR: Status Code: 400, Details: Deployment failed: Oryx build failed.\n",
    })  # fmt: skip
    env.scenario([failed, *sc.app_service(), *sc.curl_ready(), *sc.predict()])
    result = env.run(sc.script("deploy.sh"), env=extra)
    assert result.returncode == 1
    assert "Oryx build failed" in result.stderr
    assert env.calls("curl") == []
    assert env.calls("ml-service") == []


# --- rollback --------------------------------------------------------------------------------


def test_rollback_swaps_back_once_then_has_nothing_to_do(
    deploy_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = deploy_env
    env.scenario(sc.app_service() + sc.curl_ready() + sc.predict())
    assert env.run(sc.script("deploy.sh"), env=extra).returncode == 0
    env.clear_log()
    result = env.run(sc.script("rollback.sh"))
    assert result.returncode == 0, result.stderr
    assert changing(env.commands()) == ["webapp deployment slot swap", "webapp update"]
    assert env.calls("ml-service") == [["predict", "--url", f"https://{sc.HOST}"]]
    env.clear_log()
    again = env.run(sc.script("rollback.sh"))
    assert again.returncode == 0, again.stderr
    assert "nothing to roll back" in again.stdout
    assert changing(env.commands()) == []


def test_rollback_before_any_deploy_changes_nothing(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service() + sc.predict())
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("rollback.sh"))
    assert result.returncode == 0
    assert changing(stub_env.commands()) == []


# --- smoke -----------------------------------------------------------------------------------


def test_smoke_finds_the_host_and_sends_the_sample(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service() + sc.predict())
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("smoke.sh"))
    assert result.returncode == 0, result.stderr
    assert stub_env.commands() == ["webapp show", "account show", "keyvault secret show"]
    assert stub_env.calls("ml-service") == [["predict", "--url", f"https://{sc.HOST}"]]
    (smoke,) = [e for e in stub_env.entries() if e["cmd"] == "ml-service"]
    assert smoke["env_sha256"] == {"ML_SERVICE_API_KEY": sc.KEY_SHA256}
    assert sc.API_KEY not in result.stdout + result.stderr + stub_env.log_text()
    assert "smoke test passed" in result.stdout


def test_smoke_with_a_url_needs_no_azure(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.predict())
    result = stub_env.run(sc.script("smoke.sh"), "https://ml.example.org")
    assert result.returncode == 0, result.stderr
    assert stub_env.calls("az") == []
    assert stub_env.calls("ml-service") == [["predict", "--url", "https://ml.example.org"]]


def test_smoke_starts_a_stopped_app(stub_env: StubEnv) -> None:
    stopped = sc.az(["webapp", "show"], {"json": sc.site_json(state="Stopped")}, lacks=["--slot"])
    stub_env.scenario([stopped, *sc.app_service(), *sc.predict()])
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("smoke.sh"))
    assert result.returncode == 0, result.stderr
    assert stub_env.commands()[:2] == ["webapp show", "webapp start"]


def test_smoke_fails_when_the_prediction_fails(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service() + sc.predict(ok=False))
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("smoke.sh"))
    assert result.returncode == 1
    assert "503" in result.stderr
    assert "smoke test failed" in result.stderr


def test_smoke_fails_for_a_missing_app(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service() + sc.predict())
    result = stub_env.run(sc.script("smoke.sh"))
    assert result.returncode == 1
    assert "make provision" in result.stderr
    assert stub_env.calls("ml-service") == []


def test_smoke_refuses_plain_http_to_a_remote_host(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.predict())
    result = stub_env.run(sc.script("smoke.sh"), "http://ml.example.org")
    assert result.returncode == 1
    assert stub_env.calls() == []


# --- logs ------------------------------------------------------------------------------------


def test_logs_turns_logging_on_once_then_streams(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("logs.sh"))
    assert result.returncode == 0, result.stderr
    assert stub_env.commands() == ["webapp log show", "webapp log config", "webapp log tail"]
    assert "ml-service started" in result.stdout
    stub_env.clear_log()
    assert stub_env.run(sc.script("logs.sh")).returncode == 0
    assert stub_env.commands() == ["webapp log show", "webapp log tail"]


def test_logs_download_of_the_slot(stub_env: StubEnv, tmp_path: Path) -> None:
    stub_env.scenario(sc.app_service())
    stub_env.set_flags(*PROVISIONED, "logging")
    target = str(tmp_path / "logs.zip")
    env = {"LOGS_DOWNLOAD": target, "AZURE_LOG_SLOT": "staging"}
    result = stub_env.run(sc.script("logs.sh"), env=env)
    assert result.returncode == 0, result.stderr
    download = the_call(stub_env, "webapp log download")
    assert option(download, "--slot") == "staging"
    assert option(download, "--log-file") == target


# --- teardown --------------------------------------------------------------------------------


def test_teardown_removes_app_plan_and_empty_group_then_is_idempotent(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("teardown.sh"), "--yes")
    assert result.returncode == 0, result.stderr
    assert changing(stub_env.commands()) == [
        "webapp delete",
        "appservice plan delete",
        "identity delete",
        "identity delete",
        "keyvault delete",
        "keyvault purge",
        "group delete",
    ]
    purge = the_call(stub_env, "keyvault purge")
    assert option(purge, "--name") == sc.APP_VAULT
    stub_env.clear_log()
    again = stub_env.run(sc.script("teardown.sh"), "--yes")
    assert again.returncode == 0, again.stderr
    assert stub_env.commands() == ["group show"]
    assert "nothing to remove" in again.stdout


def test_teardown_keeps_a_group_with_other_resources(stub_env: StubEnv) -> None:
    vm = {"id": sc.rid("Microsoft.Compute/virtualMachines/agentVM"), "name": "agentVM"}
    others = sc.az(["resource", "list"], {"json": [vm]})
    stub_env.scenario([others, *sc.app_service()])
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("teardown.sh"), "--yes")
    assert result.returncode == 0, result.stderr
    assert "group delete" not in stub_env.commands()
    assert "1 other resource" in result.stdout


def test_teardown_without_yes_and_without_terminal_removes_nothing(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    stub_env.set_flags(*PROVISIONED)
    result = stub_env.run(sc.script("teardown.sh"))
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert changing(stub_env.commands()) == []


def test_the_startup_command_is_the_one_the_package_is_built_for() -> None:
    make = subprocess.run(
        ["make", "-s", "--no-print-directory", "package-startup-command"],
        cwd=sc.SCRIPTS.parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    if make.returncode != 0:
        pytest.skip("no package-startup-command target")
    assert make.stdout.strip() == sc.STARTUP
    common = sc.script("common.sh").read_text()
    assert f"DEFAULT_STARTUP_COMMAND='{sc.STARTUP}'" in common


def test_the_workflow_variable_names_work_too(stub_env: StubEnv) -> None:
    stub_env.scenario(sc.app_service())
    result = stub_env.run(sc.script("provision.sh"), env={"AZURE_WEBAPP_NAME": "ml-web-7"})
    assert result.returncode == 0, result.stderr
    assert option(the_call(stub_env, "webapp create"), "--name") == "ml-web-7"
    stub_env.clear_log()
    stub_env.run(sc.script("provision.sh"), env={"AZURE_WEBAPP_SLOT": "blue"})
    assert option(the_call(stub_env, "webapp deployment slot create"), "--slot") == "blue"
