"""`ml-service compare` with real models trained both ways (all the families, and the linear
family alone) on the same data: a better challenger is promoted, a worse one or one that fails
a behaviour check is kept, and what cannot be compared exits 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import Trained
from tests.promotion.conftest import Store, Tracked

from ml_service.cli import main
from ml_service.errors import TrainingError
from ml_service.model import artifact
from ml_service.promotion import compare, policy
from ml_service.promotion.behaviour import Outcome

QUICK = ["--resamples", "200"]


def run(
    capsys: pytest.CaptureFixture[str], champion: Path | str, challenger: Path | str, *more: str
) -> tuple[int, str, str]:
    argv = ["compare", "--champion", str(champion), "--challenger", str(challenger), *QUICK]
    status = main([*argv, *more])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def repackaged(source: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of an artifact with files replaced (or left out, None), its manifest rewritten:
    an artifact as valid as the original, only saying something else."""
    manifest = artifact.read_manifest(source)
    files = {name: artifact.read_verified(source, manifest, name) for name in manifest.files}
    for name, data in change.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    artifact.write_artifact(out, manifest.name, manifest.version, files, manifest.libraries)
    return out


def test_a_better_challenger_is_promoted(
    capsys: pytest.CaptureFixture[str], linear_housing: Tracked, model_dir: Path
) -> None:
    status, out, err = run(capsys, linear_housing.path, model_dir)
    assert (status, err) == (0, "")
    assert "decision: promote the challenger: RMSE better by" in out
    assert "rows:       102 (the challenger's held-out rows, holdout.csv)" in out
    for label in ("RMSE *", "MAE", "R²"):
        assert f"\n{label} " in out
    assert "pass  direction: RM 6 → 7 moves the prediction up" in out
    assert "pass  direction: LSTAT 10 → 20 moves the prediction down" in out


def test_a_worse_challenger_is_kept(
    capsys: pytest.CaptureFixture[str], linear_housing: Tracked, model_dir: Path
) -> None:
    status, out, _ = run(capsys, model_dir, linear_housing.path)
    assert status == compare.KEEP
    assert "decision: keep the champion: the challenger's RMSE is not better" in out


def test_the_same_model_is_not_promoted(
    capsys: pytest.CaptureFixture[str], model_dir: Path
) -> None:
    status, out, _ = run(capsys, model_dir, model_dir)
    assert status == compare.KEEP
    assert "not better (+0;" in out


def test_the_interval_comes_from_paired_resamples(linear_housing: Tracked, model_dir: Path) -> None:
    champion = compare.load_side("champion", "linear", linear_housing.path)
    challenger = compare.load_side("challenger", "all", model_dir)
    found = compare.compare(champion, challenger, resamples=300, seed=7)
    rmse = next(r for r in found.table if r.metric == "rmse")
    assert rmse.low < rmse.difference < rmse.high < 0
    again = compare.compare(champion, challenger, resamples=300, seed=7)
    assert again.table == found.table
    other = compare.compare(champion, challenger, resamples=300, seed=8)
    assert other.table != found.table
    # Every metric of the task, on the challenger's held-out rows.
    assert [r.metric for r in found.table] == ["rmse", "mae", "r2"]
    card = json.loads((model_dir / "card.json").read_text())
    assert found.rows_used == card["training_data"]["test_rows"]
    assert next(r for r in found.table if r.metric == "rmse").challenger == pytest.approx(
        card["metrics"]["rmse"], rel=1e-5
    )


@pytest.mark.parametrize(
    ("margin", "gain", "low", "promote"),
    [
        (0.0, 0.5, 0.1, True),
        (0.0, 0.5, -0.1, False),
        (0.2, 0.5, -0.1, True),
        (0.2, 0.5, -0.3, False),
        (1.0, -0.1, -0.5, False),
        (0.0, 0.0, 0.0, False),
    ],
)
def test_the_decision_rule(margin: float, gain: float, low: float, promote: bool) -> None:
    # R² is higher-is-better: the improvement is the difference itself.
    row = compare.Row("r2", 0.5, 0.5 + gain, low, gain + 0.3)
    decided, reason = compare.decide([row], "r2", margin, [])
    assert decided is promote, reason
    # RMSE is lower-is-better: the same improvement is a negative difference.
    flipped = compare.Row("rmse", 5.0, 5.0 - gain, -(gain + 0.3), -low)
    assert compare.decide([flipped], "rmse", margin, [])[0] is promote


def test_a_failed_behaviour_check_keeps_the_champion(
    capsys: pytest.CaptureFixture[str],
    linear_housing: Tracked,
    model_dir: Path,
    tmp_path: Path,
) -> None:
    wrong = {
        "metric": "rmse",
        "margin": 0.0,
        "behaviour": {
            "direction": [{"feature": "RM", "sign": -1, "from": 6, "to": 7}],
            "invariance": [{"feature": "LSTAT", "tolerance": 0.01}],
        },
    }
    challenger = repackaged(
        model_dir, tmp_path / "housing", {policy.POLICY_FILE: json.dumps(wrong).encode()}
    )
    status, out, _ = run(capsys, linear_housing.path, challenger)
    assert status == compare.KEEP
    assert "decision: keep the champion: 2 behaviour check(s) failed" in out
    assert "FAIL  direction: RM 6 → 7 moves the prediction down in" in out
    assert "FAIL  invariance: shuffling LSTAT moves the prediction by at most" in out
    # The metrics alone would have promoted it.
    assert compare.decide(
        [compare.Row("rmse", 5.3, 3.0, -3.0, -1.0)], "rmse", 0.0, [Outcome("x", True)]
    )[0]


def test_a_registered_champion(
    capsys: pytest.CaptureFixture[str], store: Store, linear_housing: Tracked, model_dir: Path
) -> None:
    status, out, _ = run(capsys, "models:/housing@champion", model_dir, "--tracking-uri", store.uri)
    assert status == 0
    assert (
        f"champion:   models:/housing@champion → housing {linear_housing.printed['version']}" in out
    )


def test_rows_from_a_data_file(
    capsys: pytest.CaptureFixture[str], linear_housing: Tracked, model_dir: Path, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    shutil.copy(model_dir / artifact.HOLDOUT_FILE, rows)
    status, out, _ = run(capsys, linear_housing.path, model_dir, "--data", str(rows))
    assert status == 0
    assert f"rows:       102 ({rows})" in out


def write_rows(path: Path, source: Path, edit: str) -> Path:
    lines = (source / artifact.HOLDOUT_FILE).read_text().splitlines()
    if edit == "drop RM":
        header = lines[0].split(",")
        j = header.index("RM")
        lines = [",".join(c for i, c in enumerate(line.split(",")) if i != j) for line in lines]
    elif edit == "bad values":
        cells = lines[3].split(",")
        cells[1] = "-4"
        lines[3] = ",".join(cells)
        cells = lines[5].split(",")
        cells[0] = "3"
        lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("task", "the champion is a classification model, the challenger a regression model"),
        ("target", "the champion predicts price, the challenger MEDV"),
        ("drop RM", "no column(s) RM, which the champion needs"),
        ("bad values", "cannot take 2 value(s) of the rows: "),
        ("no file", "missing.csv: no such file"),
        ("metric", "--metric log_loss is not a metric of a regression model"),
        ("no holdout", "carries no held-out rows (holdout.csv); give the rows"),
        ("champion", "the champion (/nonexistent): "),
        ("url challenger", "the challenger must be an artifact directory or a models:/"),
    ],
)
def test_what_cannot_be_compared_exits_1(
    case: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    linear_housing: Tracked,
    model_dir: Path,
    churn: Trained,
    homes: Trained,
    tmp_path: Path,
) -> None:
    champion: Path | str = linear_housing.path
    challenger: Path | str = model_dir
    more: list[str] = []
    if case == "task":
        champion = churn.path
    elif case == "target":
        champion = homes.path
    elif case in ("drop RM", "bad values"):
        more = ["--data", str(write_rows(tmp_path / "rows.csv", model_dir, case))]
    elif case == "no file":
        more = ["--data", str(tmp_path / "missing.csv")]
    elif case == "metric":
        more = ["--metric", "log_loss"]
    elif case == "no holdout":
        challenger = repackaged(model_dir, tmp_path / "housing", {artifact.HOLDOUT_FILE: None})
    elif case == "champion":
        champion = "/nonexistent"
    elif case == "url challenger":
        challenger = "url:http://127.0.0.1:9"
    status, out, err = run(capsys, champion, challenger, *more)
    assert (status, out) == (1, "")
    assert err.startswith("ml-service compare: error: ")
    assert message in err
    assert "Traceback" not in err


def test_a_bad_value_is_named_by_its_line(
    capsys: pytest.CaptureFixture[str], linear_housing: Tracked, model_dir: Path, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.csv", model_dir, "bad values")
    _, _, err = run(capsys, linear_housing.path, model_dir, "--data", str(rows))
    assert f"{rows}:4/RM: RM must be" in err
    assert f"{rows}:6/CHAS: CHAS must be" in err


def test_classifiers_compare_on_log_loss(
    capsys: pytest.CaptureFixture[str], churn: Trained
) -> None:
    status, out, _ = run(capsys, churn.path, churn.path)
    assert status == compare.KEEP
    assert "decided by: log loss, margin 0" in out
    for label in ("accuracy", "balanced accuracy", "log loss *", "ROC AUC"):
        assert f"\n{label} " in out


def test_a_policy_is_checked_against_the_schema_all_at_once(model_dir: Path) -> None:
    schema = artifact.load_serving(model_dir).schema
    raw = {
        "promotion": {"metric": "accuracy", "margin": -1},
        "behaviour": {
            "direction": [
                {"feature": "ROOMS", "sign": 1, "from": 1, "to": 2},
                {"feature": "RM", "sign": 2, "from": -1, "to": 7},
            ],
            "invariance": [{"feature": "CHAS", "tolerance": "small"}],
        },
    }
    with pytest.raises(TrainingError, match=r"^schema\.json: ") as refused:
        policy.from_raw(raw, schema, "schema.json")
    text = str(refused.value)
    for part in (
        "promotion.metric 'accuracy' is not one of rmse, mae, r2",
        "promotion.margin must be at least 0",
        "feature 'ROOMS' is not a feature of the model",
        "sign must be 1 or -1",
        "behaviour.direction[1].from: RM must be",
        "behaviour.invariance[0].tolerance must be a finite number",
    ):
        assert part in text
