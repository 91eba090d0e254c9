"""Model promotion through deploy.sh against the stub `az`, `curl` and `ml-service`: the model
comparison (challenger wins, challenger loses, no comparison possible), the canary (promoted,
rolled back on errors, rolled back when it cannot be watched), the two pipeline phases with
their outputs and job summaries, and the make targets the pipelines call."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import azure_scenarios as sc
import pytest
from stubkit import REPO, StubEnv, option

pytestmark = pytest.mark.slow


@pytest.fixture
def release(stub_env: StubEnv, tmp_path: Path) -> tuple[StubEnv, dict[str, str]]:
    """A provisioned app, a package holding a model, fast polling, GitHub's output files."""
    package = tmp_path / "ml-service-app.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("requirements.txt", "")
        zf.writestr("models/housing/manifest.json", '{"name": "housing"}')
    stub_env.set_flags(*sc.PROVISIONED)
    env = {
        "ML_SERVICE_PACKAGE": str(package),
        "DEPLOY_POLL_INTERVAL": "0",
        "DEPLOY_READY_TIMEOUT": "5",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
    }
    return stub_env, env


def rules(compare: int = 0, watch: int = 0) -> list[sc.Rule]:
    return sc.app_service() + sc.curl_ready() + sc.predict() + sc.compare(compare) + sc.watch(watch)


def writes(env: StubEnv) -> list[str]:
    return [c for c in env.commands() if c.split()[-1] not in ("show", "list")]


def summary(extra: dict[str, str]) -> str:
    return Path(extra["GITHUB_STEP_SUMMARY"]).read_text()


def outputs(extra: dict[str, str]) -> list[str]:
    path = Path(extra["GITHUB_OUTPUT"])
    return path.read_text().splitlines() if path.exists() else []


CANARY = ("--compare", "--canary", "10", "--canary-seconds", "60")


def test_promote_compare_canary_then_swap(release: tuple[StubEnv, dict[str, str]]) -> None:
    env, extra = release
    env.scenario(rules())
    result = env.run(sc.script("deploy.sh"), *CANARY, env=extra)
    assert result.returncode == 0, result.stderr
    assert writes(env) == [
        "webapp deploy",
        "webapp traffic-routing set",
        "webapp traffic-routing clear",
        "webapp deployment slot swap",
        "webapp update",
    ]
    (compare,) = [c for c in env.calls("ml-service") if c[0] == "compare"]
    assert option(compare, "--champion") == f"url:https://{sc.HOST}"
    challenger = option(compare, "--challenger")
    assert challenger is not None
    assert challenger.endswith("/models/housing")
    route = next(a for a in env.calls("az") if a[:3] == ["webapp", "traffic-routing", "set"])
    assert option(route, "--distribution") == "staging=10"
    assert option(route, "--name") == sc.APP
    (watch,) = [c for c in env.calls("ml-service") if c[0] == "watch"]
    assert option(watch, "--url") == f"https://{sc.SLOT_HOST}"
    assert option(watch, "--seconds") == "60"
    assert option(watch, "--max-error-rate") == "0.01"
    assert option(watch, "--max-p99-ms") == "500"
    # compare and watch read the service with the key from Key Vault, through the environment.
    for entry in env.entries():
        if entry["cmd"] == "ml-service":
            assert entry["env_sha256"] == {"ML_SERVICE_API_KEY": sc.KEY_SHA256}
    assert sc.API_KEY not in result.stdout + result.stderr + env.log_text() + summary(extra)
    text = summary(extra)
    assert "decision: promote" in text
    assert "Canary at 10% for 60s: healthy" in text
    assert "**Promoted**" in text
    assert outputs(extra) == ["decision=promote"]
    assert "routed" not in env.flags()


def test_the_champion_can_come_from_a_directory_of_released_models(
    release: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = release
    env.scenario(rules(compare=3))
    released = {**extra, "PROMOTION_CHAMPION_REPOSITORY": "/srv/released-models"}
    result = env.run(sc.script("deploy.sh"), "--compare", env=released)
    assert result.returncode == 0, result.stderr
    (compare,) = [c for c in env.calls("ml-service") if c[0] == "compare"]
    assert option(compare, "--champion-repository") == "/srv/released-models"
    assert option(compare, "--champion") == f"url:https://{sc.HOST}"


def test_canary_errors_roll_back_and_fail(release: tuple[StubEnv, dict[str, str]]) -> None:
    env, extra = release
    env.scenario(rules(watch=3))
    result = env.run(sc.script("deploy.sh"), *CANARY, env=extra)
    assert result.returncode == 1
    assert writes(env) == [
        "webapp deploy",
        "webapp traffic-routing set",
        "webapp traffic-routing clear",
    ]
    assert "swap" not in " ".join(env.commands())
    assert "5xx share 7.40%" in result.stderr
    assert "rolled back, production untouched" in result.stderr
    text = summary(extra)
    assert "unhealthy: 5xx share 7.40%" in text
    assert "**Rolled back**" in text
    assert "routed" not in env.flags()


def test_a_canary_that_cannot_be_watched_is_rolled_back(
    release: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = release
    env.scenario(rules(watch=1))
    result = env.run(sc.script("deploy.sh"), "--canary", "25", env=extra)
    assert result.returncode == 1
    assert writes(env)[-1] == "webapp traffic-routing clear"
    assert "could not watch the canary" in summary(extra)


def test_challenger_loses_keeps_the_champion_and_passes(
    release: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = release
    env.scenario(rules(compare=3))
    result = env.run(sc.script("deploy.sh"), *CANARY, env=extra)
    assert result.returncode == 0, result.stderr
    assert writes(env) == []
    assert [c[0] for c in env.calls("ml-service")] == ["compare"]
    text = summary(extra)
    assert "keep the champion (rmse is worse by 0.27)" in text
    assert "**Kept the champion**" in text
    assert outputs(extra) == ["decision=keep"]


def test_challenger_loses_fails_when_so_configured(
    release: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = release
    env.scenario(rules(compare=3))
    extra["PROMOTION_FAIL_ON_KEEP"] = "true"
    result = env.run(sc.script("deploy.sh"), *CANARY, env=extra)
    assert result.returncode == 1
    assert "PROMOTION_FAIL_ON_KEEP" in result.stderr
    assert writes(env) == []
    assert outputs(extra) == ["decision=keep"]


def test_no_comparison_possible_deploys_nothing(release: tuple[StubEnv, dict[str, str]]) -> None:
    env, extra = release
    env.scenario(rules(compare=1))
    result = env.run(sc.script("deploy.sh"), "--compare", env=extra)
    assert result.returncode == 1
    assert "could not compare" in result.stderr
    assert writes(env) == []


def test_the_two_phases_split_the_release_between_two_identities(
    release: tuple[StubEnv, dict[str, str]],
) -> None:
    env, extra = release
    env.scenario(rules())
    staging = env.run(sc.script("deploy.sh"), "--phase", "staging", "--compare", env=extra)
    assert staging.returncode == 0, staging.stderr
    assert writes(env) == ["webapp deploy"]
    assert outputs(extra) == ["decision=promote"]
    env.clear_log()
    production_env = {k: v for k, v in extra.items() if k != "ML_SERVICE_PACKAGE"}
    production = env.run(
        sc.script("deploy.sh"), "--phase", "production", "--canary", "10", env=production_env
    )
    assert production.returncode == 0, production.stderr
    assert writes(env) == [
        "webapp traffic-routing set",
        "webapp traffic-routing clear",
        "webapp deployment slot swap",
        "webapp update",
    ]
    assert [c[0] for c in env.calls("ml-service")] == ["watch", "predict"]


def test_azure_pipelines_gets_its_output_variable_and_summary(
    release: tuple[StubEnv, dict[str, str]], tmp_path: Path
) -> None:
    env, extra = release
    env.scenario(rules(compare=3))
    ado = {k: v for k, v in extra.items() if not k.startswith("GITHUB_")}
    ado |= {"TF_BUILD": "True", "PROMOTION_SUMMARY": str(tmp_path / "ado.md")}
    result = env.run(sc.script("deploy.sh"), "--phase", "staging", "--compare", env=ado)
    assert result.returncode == 0, result.stderr
    assert "##vso[task.setvariable variable=decision;isOutput=true]keep" in result.stdout
    assert result.stdout.rstrip().endswith(f"##vso[task.uploadsummary]{tmp_path / 'ado.md'}")
    assert "**Kept the champion**" in (tmp_path / "ado.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--canary", "100"), "percentage from 0 to 99"),
        (("--canary", "ten"), "percentage"),
        (("--canary-seconds", "0"), "whole number of seconds"),
        (("--phase", "canary"), "--phase is all, staging or production"),
        (("--swap",), "usage"),
    ],
)
def test_bad_flags_are_refused_before_any_call(
    release: tuple[StubEnv, dict[str, str]], args: tuple[str, ...], message: str
) -> None:
    env, extra = release
    env.scenario(rules())
    result = env.run(sc.script("deploy.sh"), *args, env=extra)
    assert result.returncode != 0
    assert message in result.stderr
    assert env.calls() == []


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("deploy-staging", ["webapp deploy"]),
        (
            "deploy-production",
            ["webapp traffic-routing set", "webapp traffic-routing clear",
             "webapp deployment slot swap", "webapp update"],
        ),
    ],
)  # fmt: skip
def test_the_make_targets_the_pipelines_call(
    release: tuple[StubEnv, dict[str, str]], target: str, expected: list[str]
) -> None:
    env, extra = release
    env.scenario(rules())
    make_env = {
        k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    }
    make_env |= env.environ(extra)
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            target,
            "ML_SERVICE_PREDICT=ml-service",
            "CANARY_SECONDS=30",
        ],
        cwd=REPO,
        env=make_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert writes(env) == expected
    if target == "deploy-production":
        (watch,) = [c for c in env.calls("ml-service") if c[0] == "watch"]
        assert option(watch, "--seconds") == "30"
