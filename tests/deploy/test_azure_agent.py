"""Offline tests of the build agent scripts: agent.sh and agent-teardown.sh against the stub
`az`, and agent-register.sh (the VM's first-boot installer) against a stub `curl` and a fake
agent release. The PAT must never show up in output, recorded arguments or custom data."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import azure_scenarios as sc
import pytest
from stubkit import StubEnv, option

PAT = "pat5x3kq7m2vzr8wnb4c6t9yd1hfjgle0s7u2o4ip3a5"
ORG = "https://dev.azure.com/contoso"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.imds-access-token"
CHANGING_FIRST_RUN = [
    "group create",
    "keyvault create",
    "keyvault secret set",
    "vm create",
    "keyvault set-policy",
]


@pytest.fixture
def agent_env(stub_env: StubEnv, tmp_path: Path) -> tuple[StubEnv, dict[str, str]]:
    """Stub az answering for an empty subscription; an SSH key; the settings agent.sh needs."""
    ssh = stub_env.home / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKey dev@box\n")
    stub_env.scenario(sc.agent())
    env = {
        "ADO_ORG_URL": ORG,
        "ADO_PAT": PAT,
        "AGENT_CUSTOM_DATA_OUT": str(tmp_path / "custom-data.yaml"),
    }
    return stub_env, env


def changing(env: StubEnv) -> list[str]:
    return [c for c in env.commands() if c.split()[-1] not in ("show", "show-deleted")]


def writes(env: StubEnv) -> list[str]:
    """The az calls that change something."""
    return [c for c in changing(env) if not c.endswith(("list", "list-deleted"))]


def assert_no_secret(env: StubEnv, *texts: str) -> None:
    """The PAT is in no recorded argument, no log line and none of `texts`."""
    assert PAT not in env.log_text()
    for text in texts:
        assert PAT not in text


def test_agent_first_run_stores_pat_in_key_vault_through_stdin_only(
    agent_env: tuple[StubEnv, dict[str, str]], tmp_path: Path
) -> None:
    env, extra = agent_env
    result = env.run(sc.script("agent.sh"), env=extra)
    assert result.returncode == 0, result.stderr
    assert env.commands() == [
        "group show",
        "group create",
        "vm show",
        "account show",
        "keyvault show",
        "keyvault create",
        "keyvault secret set",
        "vm create",
        "vm show",
        "keyvault set-policy",
        "vm show",
    ]
    secret = next(e for e in env.entries() if e["argv"][:3] == ["keyvault", "secret", "set"])
    assert secret["stdin_sha256"] == hashlib.sha256(PAT.encode()).hexdigest()
    assert option(secret["argv"], "--file") == "/dev/stdin"
    custom_data = Path(extra["AGENT_CUSTOM_DATA_OUT"]).read_text()
    assert_no_secret(env, result.stdout, result.stderr, custom_data)
    assert "password" not in " ".join(env.log_text().split()).lower()


def test_agent_vm_is_created_with_ssh_keys_identity_and_custom_data(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    assert env.run(sc.script("agent.sh"), env=extra).returncode == 0
    create = next(
        a for a, c in zip(env.calls("az"), env.commands(), strict=True) if c == "vm create"
    )
    assert option(create, "--authentication-type") == "ssh"
    assert option(create, "--ssh-key-values") == str(env.home / ".ssh" / "id_ed25519.pub")
    assert "--assign-identity" in create
    assert "--admin-password" not in create
    assert option(create, "--size") == "Standard_DS1_v2"
    assert option(create, "--admin-username") == "devopsagent"
    assert option(create, "--name") == "agentVM"
    policy = next(a for a in env.calls("az") if a[:2] == ["keyvault", "set-policy"])
    assert option(policy, "--object-id") == sc.PRINCIPAL
    assert policy[policy.index("--secret-permissions") + 1 : policy.index("--output")] == [
        "get",
        "delete",
        "purge",
    ]
    vault = option(policy, "--name")
    assert vault is not None
    assert vault.startswith("kv-agent-")
    assert 3 <= len(vault) <= 24


def test_agent_custom_data_is_valid_cloud_config_carrying_the_register_script(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    assert env.run(sc.script("agent.sh"), env=extra).returncode == 0
    path = Path(extra["AGENT_CUSTOM_DATA_OUT"])
    text = path.read_text()
    assert text.startswith("#cloud-config\n")
    assert "@@" not in text
    assert f"ADO_ORG_URL='{ORG}'" in text
    assert "ADO_POOL='vmAgentPool'" in text
    encoded = text.split('content: "', 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded) == sc.script("agent-register.sh").read_bytes()
    if shutil.which("cloud-init"):
        check = subprocess.run(
            ["cloud-init", "schema", "--config-file", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_agent_re_run_changes_nothing_and_asks_no_pat(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    assert env.run(sc.script("agent.sh"), env=extra).returncode == 0
    env.clear_log()
    del extra["ADO_PAT"]
    result = env.run(sc.script("agent.sh"), env=extra)
    assert result.returncode == 0, result.stderr
    assert env.commands() == [
        "group show",
        "vm show",
        "account show",
        "keyvault show",
        "keyvault secret list",
    ]
    assert "not registered yet; nothing to do" in result.stdout


def test_agent_re_run_after_registration_revokes_the_vm_s_access_once(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    assert env.run(sc.script("agent.sh"), env=extra).returncode == 0
    # The VM registered, deleted the PAT, and could not purge it yet.
    (env.state / "flag.secret").unlink()
    env.set_flags("secret.deleted")
    env.clear_log()
    del extra["ADO_PAT"]
    result = env.run(sc.script("agent.sh"), env=extra)
    assert result.returncode == 0, result.stderr
    assert writes(env) == ["keyvault secret purge", "keyvault delete-policy"]
    revoke = next(a for a in env.calls("az") if a[:2] == ["keyvault", "delete-policy"])
    assert option(revoke, "--object-id") == sc.PRINCIPAL
    assert "revoking the VM's access" in result.stdout
    env.clear_log()
    again = env.run(sc.script("agent.sh"), env=extra)
    assert again.returncode == 0, again.stderr
    assert writes(env) == []
    assert "has no access" in again.stdout


def test_agent_without_pat_and_without_terminal_creates_nothing(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    del extra["ADO_PAT"]
    result = env.run(sc.script("agent.sh"), env=extra)
    assert result.returncode == 1
    assert "ADO_PAT" in result.stderr
    assert changing(env) == ["group create"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ADO_ORG_URL", "", "ADO_ORG_URL"),
        ("ADO_ORG_URL", "http://dev.azure.com/x", "ADO_ORG_URL"),
        ("ADO_POOL", "pool'; rm -rf /", "ADO_POOL"),
        ("ADO_AGENT_VERSION", "latest", "ADO_AGENT_VERSION"),
        ("AGENT_SSH_PUBLIC_KEY", "/nonexistent.pub", "ssh-keygen"),
    ],
)
def test_agent_refuses_bad_settings_before_any_call(
    agent_env: tuple[StubEnv, dict[str, str]], name: str, value: str, message: str
) -> None:
    env, extra = agent_env
    result = env.run(sc.script("agent.sh"), env=extra | {name: value})
    assert result.returncode == 1
    assert message in result.stderr
    assert env.calls() == []
    assert_no_secret(env, result.stdout, result.stderr)


def test_agent_vm_failure_is_reported_clearly(agent_env: tuple[StubEnv, dict[str, str]]) -> None:
    env, extra = agent_env
    capacity = sc.az(["vm", "create"], {
        "exit": 1,
        "stderr": "ERROR: (SkuNotAvailable) The requested VM size for resource "
                  "'Following SKUs have failed for Capacity Restrictions: Standard_DS1_v2' "
                  "is currently not available in location 'centralus'.\n",
    })  # fmt: skip
    env.scenario([capacity, *sc.agent()])
    result = env.run(sc.script("agent.sh"), env=extra)
    assert result.returncode == 1
    assert "SkuNotAvailable" in result.stderr
    assert "'az vm create ...' failed" in result.stderr
    assert "keyvault set-policy" not in env.commands()
    assert_no_secret(env, result.stdout, result.stderr)


def test_agent_without_public_ssh_has_no_public_ip(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    assert env.run(sc.script("agent.sh"), env=extra | {"AGENT_PUBLIC_SSH": "false"}).returncode == 0
    create = next(
        a for a, c in zip(env.calls("az"), env.commands(), strict=True) if c == "vm create"
    )
    assert option(create, "--public-ip-address") == ""
    assert option(create, "--nsg-rule") == "NONE"


def test_agent_teardown_removes_everything_then_is_idempotent(
    agent_env: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = agent_env
    assert env.run(sc.script("agent.sh"), env=extra).returncode == 0
    vault = option(next(a for a in env.calls("az") if a[:2] == ["keyvault", "create"]), "--name")
    env.clear_log()
    result = env.run(sc.script("agent-teardown.sh"), "--yes")
    assert result.returncode == 0, result.stderr
    assert changing(env) == [
        "vm delete",
        "network public-ip delete",
        "network nsg delete",
        "network vnet delete",
        "keyvault delete",
        "keyvault purge",
    ]
    purge = next(a for a in env.calls("az") if a[:2] == ["keyvault", "purge"])
    assert option(purge, "--name") == vault
    env.clear_log()
    again = env.run(sc.script("agent-teardown.sh"), "--yes")
    assert again.returncode == 0, again.stderr
    assert changing(env) == []
    assert "group delete" not in env.commands()


def test_agent_teardown_needs_confirmation(agent_env: tuple[StubEnv, dict[str, str]]) -> None:
    env, _ = agent_env
    result = env.run(sc.script("agent-teardown.sh"))
    assert result.returncode == 1
    assert env.calls() == []


# --- agent-register.sh: the VM's first boot ---------------------------------------------------

FAKE_CONFIG = """#!/bin/sh
# Fake agent config.sh: records its arguments and a hash of the token it got from the environment.
printf '%s\\n' "$*" > "$(dirname "$0")/config.args"
printf '%s' "$VSTS_AGENT_INPUT_TOKEN" | sha256sum | cut -d' ' -f1 > "$(dirname "$0")/config.token"
touch "$(dirname "$0")/.agent"
"""
FAKE_SVC = """#!/bin/sh
printf '%s\\n' "$*" >> "$(dirname "$0")/svc.calls"
"""


def fake_release() -> bytes:
    """A .tar.gz shaped like the agent release (config.sh, svc.sh, bin/installdependencies.sh)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in (
            ("config.sh", FAKE_CONFIG),
            ("svc.sh", FAKE_SVC),
            ("bin/installdependencies.sh", "#!/bin/sh\nexit 0\n"),
        ):
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def first_boot(stub_env: StubEnv, tmp_path: Path) -> tuple[StubEnv, dict[str, str], Path]:
    """agent.env in tmp_path, a stub curl serving the release, IMDS and Key Vault."""
    release = fake_release()
    agent_dir = tmp_path / "opt-agent"
    runuser = tmp_path / "runuser"
    runuser.write_text('#!/bin/sh\n# runuser -u USER -w VARS -- CMD...\nshift 5\nexec "$@"\n')
    runuser.chmod(0o755)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"ADO_ORG_URL='{ORG}'\nADO_POOL='vmAgentPool'\nADO_AGENT_NAME='agentVM'\n"
        "ADO_AGENT_VERSION='4.264.2'\n"
        f"ADO_AGENT_SHA256='{hashlib.sha256(release).hexdigest()}'\n"
        "KEYVAULT_NAME='kv-agent-0123456789'\nSECRET_NAME='ado-agent-pat'\n"
        f"AGENT_USER='{user}'\nAGENT_DIR='{agent_dir}'\n"
    )
    vault_url = "https://kv-agent-0123456789.vault.azure.net"
    rules = [
        {"cmd": "curl", "args": [], "read_stdin": True,
         "contains": ["DELETE", f"{vault_url}/secrets/ado-agent-pat?api-version=7.4"],
         "stdout": json.dumps({"recoveryId": "x"})},
        {"cmd": "curl", "args": [], "read_stdin": True, "times": 1, "exit": 22,
         "contains": ["DELETE", f"{vault_url}/deletedsecrets/ado-agent-pat?api-version=7.4"],
         "stderr": "curl: (22) The requested URL returned error: 409\n"},
        {"cmd": "curl", "args": [], "read_stdin": True,
         "contains": ["DELETE", f"{vault_url}/deletedsecrets/ado-agent-pat?api-version=7.4"]},
        {
            "cmd": "curl",
            "args": [],
            "contains": ["https://download.agent.dev.azure.com/agent/4.264.2/"
                         "vsts-agent-linux-x64-4.264.2.tar.gz"],
            "write": {"option": "--output", "base64": base64.b64encode(release).decode()},
        },
        {"cmd": "curl", "args": [], "contains": ["Metadata: true"], "times": 1, "exit": 22,
         "stderr": "curl: (22) The requested URL returned error: 400\n"},
        {"cmd": "curl", "args": [], "contains": ["Metadata: true"],
         "stdout": json.dumps({"access_token": ACCESS_TOKEN, "token_type": "Bearer"})},
        {"cmd": "curl", "args": [], "contains": [
            "https://kv-agent-0123456789.vault.azure.net/secrets/ado-agent-pat?api-version=7.4"],
         "read_stdin": True, "stdout": json.dumps({"value": PAT, "id": "x"})},
    ]  # fmt: skip
    stub_env.scenario(rules)
    extra = {
        "ADO_AGENT_ENV": str(env_file),
        "RUNUSER": str(runuser),
        "SECRET_POLL_INTERVAL": "0",
        "SECRET_TIMEOUT": "10",
    }
    return stub_env, extra, agent_dir


def test_first_boot_registers_with_the_pat_from_key_vault_in_the_environment_only(
    first_boot: tuple[StubEnv, dict[str, str], Path],
) -> None:
    env, extra, agent_dir = first_boot
    result = env.run(sc.script("agent-register.sh"), env=extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (agent_dir / "config.token").read_text().strip() == hashlib.sha256(
        PAT.encode()
    ).hexdigest()
    args = (agent_dir / "config.args").read_text()
    assert f"--url {ORG} --auth pat --pool vmAgentPool --agent agentVM" in args
    assert PAT not in args
    assert (agent_dir / "svc.calls").read_text().splitlines()[-1] == "start"
    expected = hashlib.sha256(f"Authorization: Bearer {ACCESS_TOKEN}\n".encode()).hexdigest()
    vault_calls = [e for e in env.entries() if "stdin_sha256" in e]
    assert {e["stdin_sha256"] for e in vault_calls} == {expected}
    assert ACCESS_TOKEN not in env.log_text()
    assert_no_secret(env, result.stdout, result.stderr)
    assert len([c for c in env.calls("curl") if "Metadata: true" in c]) == 2
    # Registered, the VM deletes the PAT, then purges it (retrying while Azure finishes the
    # deletion), so that nothing on it can read the PAT again.
    methods = [(c[c.index("--request") + 1], c[-1].split("/")[3]) for c in env.calls("curl")
               if "--request" in c]  # fmt: skip
    assert methods == [("DELETE", "secrets"), ("DELETE", "deletedsecrets"),
                       ("DELETE", "deletedsecrets")]  # fmt: skip
    assert "deleted and purged" in result.stdout
    config_at = next(i for i, c in enumerate(env.calls("curl")) if "--request" in c)
    assert (agent_dir / "config.args").exists()
    assert config_at > 0


def test_first_boot_fails_loudly_when_the_pat_cannot_be_deleted(
    first_boot: tuple[StubEnv, dict[str, str], Path],
) -> None:
    env, extra, agent_dir = first_boot
    refused = {"cmd": "curl", "args": [], "contains": ["DELETE"], "exit": 22,
               "stderr": "curl: (22) The requested URL returned error: 403\n"}  # fmt: skip
    rules = json.loads(env.scenario_file.read_text())["rules"]
    env.scenario([refused, *rules])
    result = env.run(sc.script("agent-register.sh"), env=extra)
    assert result.returncode == 1
    assert "could not delete secret ado-agent-pat" in result.stderr
    assert (agent_dir / "svc.calls").read_text().splitlines()[-1] == "start"
    assert_no_secret(env, result.stdout, result.stderr)


def test_first_boot_runs_once(first_boot: tuple[StubEnv, dict[str, str], Path]) -> None:
    env, extra, _ = first_boot
    assert env.run(sc.script("agent-register.sh"), env=extra).returncode == 0
    env.clear_log()
    again = env.run(sc.script("agent-register.sh"), env=extra)
    assert again.returncode == 0
    assert "already registered" in again.stdout
    assert env.calls() == []


def test_first_boot_refuses_a_release_with_the_wrong_checksum(
    first_boot: tuple[StubEnv, dict[str, str], Path],
) -> None:
    env, extra, agent_dir = first_boot
    env_file = Path(extra["ADO_AGENT_ENV"])
    wrong = "ADO_AGENT_SHA256='" + "0" * 64 + "'"
    env_file.write_text(re.sub(r"ADO_AGENT_SHA256='[0-9a-f]+'", wrong, env_file.read_text()))
    result = env.run(sc.script("agent-register.sh"), env=extra)
    assert result.returncode == 1
    assert "does not match" in result.stderr
    assert not (agent_dir / "config.args").exists()


def test_first_boot_gives_up_when_key_vault_stays_closed(
    first_boot: tuple[StubEnv, dict[str, str], Path],
) -> None:
    env, extra, agent_dir = first_boot
    closed = {"cmd": "curl", "args": [], "contains": ["Metadata: true"], "exit": 22}
    rules = json.loads(env.scenario_file.read_text())["rules"]
    env.scenario([closed, *rules])
    result = env.run(
        sc.script("agent-register.sh"),
        env=extra | {"SECRET_TIMEOUT": "1", "SECRET_POLL_INTERVAL": "0.2"},
    )
    assert result.returncode == 1
    assert "no access to secret" in result.stderr
    assert not (agent_dir / "config.args").exists()
