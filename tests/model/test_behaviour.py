"""The models behave as their data says: the house-price model in quality, direction and
invariance; the example models in the direction of what their data was made from; classifiers
answer probabilities that sum to one, the label being the likeliest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import Trained

from ml_service.model import artifact
from ml_service.model.training import TrainingResult
from ml_service.predictor import Predictor

RM, LSTAT = 1, 5
# Boosted trees are not constrained to be monotone: averaged over homes, a step along the grid
# may dip a little ($500 at most) while the trend over the grid must be clear. The grid spans
# the 5th to 95th percentile of the training values, where the model has evidence.
STEP_TOLERANCE = 0.5
TREND = 2.0


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor(artifact.load_serving(model_dir))


def test_minimum_quality_on_held_out_rows(trained: tuple[Path, TrainingResult]) -> None:
    _, result = trained
    assert result.holdout["r2"] >= 0.75
    assert result.holdout["rmse"] <= 4.5
    assert result.cv_summary()["r2_mean"] >= 0.7


def test_predictions_track_known_prices(
    trained: tuple[Path, TrainingResult], predictor: Predictor
) -> None:
    _, result = trained
    predicted = predictor.predict(result.x_test).values
    assert np.corrcoef(predicted, result.y_test)[0, 1] > 0.85
    # The cheapest and dearest held-out homes are predicted in the right order by a wide margin.
    cheap, dear = np.argmin(result.y_test), np.argmax(result.y_test)
    assert predicted[dear] - predicted[cheap] > 15


def test_a_single_row_gets_its_own_answer(
    trained: tuple[Path, TrainingResult], predictor: Predictor
) -> None:
    _, result = trained
    singles = [predictor.predict(row[None, :]).values[0] for row in result.x_test[:20]]
    assert len(set(np.round(singles, 6))) > 15
    np.testing.assert_allclose(
        singles, predictor.predict(result.x_test[:20]).values, rtol=0, atol=1e-9
    )


def with_value(rows: np.ndarray, column: int, value: float) -> np.ndarray:
    changed = rows.copy()
    changed[:, column] = value
    return changed


def evidence_grid(result: TrainingResult, column: int) -> np.ndarray:
    low, high = np.percentile(result.x_train[:, column], [5, 95])
    return np.linspace(low, high, 10)


def partial_dependence(
    predictor: Predictor, rows: np.ndarray, column: int, grid: np.ndarray
) -> np.ndarray:
    """Mean prediction over `rows` with `column` set to each grid value in turn."""
    return np.array([predictor.predict(with_value(rows, column, v)).values.mean() for v in grid])


def test_more_rooms_raise_the_price(
    trained: tuple[Path, TrainingResult], predictor: Predictor
) -> None:
    _, result = trained
    rows = result.x_test
    # Nearly every held-out home, the rest fixed, is worth more with 7 rooms than with 6 (a
    # forest's steps may leave the odd home flat or a little lower), and clearly so on average.
    gain = (
        predictor.predict(with_value(rows, RM, 7)).values
        - predictor.predict(with_value(rows, RM, 6)).values
    )
    assert (gain > 0).mean() >= 0.95
    assert gain.mean() > 2
    curve = partial_dependence(predictor, rows, RM, evidence_grid(result, RM))
    assert (np.diff(curve) >= -STEP_TOLERANCE).all()
    assert curve[-1] - curve[0] > TREND


def test_higher_lstat_lowers_the_price(
    trained: tuple[Path, TrainingResult], predictor: Predictor
) -> None:
    _, result = trained
    rows = result.x_test
    loss = (
        predictor.predict(with_value(rows, LSTAT, 10)).values
        - predictor.predict(with_value(rows, LSTAT, 20)).values
    )
    assert (loss > 0).mean() >= 0.95
    assert loss.mean() > 2
    curve = partial_dependence(predictor, rows, LSTAT, evidence_grid(result, LSTAT))
    assert (np.diff(curve) <= STEP_TOLERANCE).all()
    assert curve[0] - curve[-1] > TREND


def test_invariant_to_the_rest_of_the_batch(
    trained: tuple[Path, TrainingResult], predictor: Predictor
) -> None:
    _, result = trained
    rows = result.x_test[:30]
    alone = predictor.predict(rows[:1]).values[0]
    shuffled = np.random.default_rng(1).permutation(len(rows))
    in_batch = predictor.predict(rows[shuffled]).values
    assert in_batch[list(shuffled).index(0)] == alone


def code_of(trained: Trained, feature: str, category: str) -> tuple[int, float]:
    schema = trained.result.schema
    j = schema.names.index(feature)
    return j, float((schema.features[j].categories or ()).index(category))


def test_air_conditioning_raises_the_price_of_every_home(homes: Trained) -> None:
    result = homes.result
    j, yes = code_of(homes, "airco", "yes")
    _, no = code_of(homes, "airco", "no")
    rows = result.x_test
    gain = result.pipeline.predict(with_value(rows, j, yes)) - result.pipeline.predict(
        with_value(rows, j, no)
    )
    assert (gain > 0).all()
    assert 5_000 < gain.mean() < 20_000  # made with +12,500 dollars


def test_missing_values_are_answered_as_trained(homes: Trained) -> None:
    result = homes.result
    nullable = [j for j, f in enumerate(result.schema.features) if f.nullable]
    rows = result.x_test.copy()
    rows[:, nullable] = np.nan
    predicted = result.pipeline.predict(rows)
    assert np.isfinite(predicted).all()
    low, high = np.percentile(result.y_train, [1, 99])
    assert (predicted > low / 2).all()
    assert (predicted < high * 2).all()


def probabilities(trained: Trained, rows: np.ndarray) -> np.ndarray:
    return trained.result.pipeline.predict_proba(rows)


@pytest.mark.parametrize("name", ["churn", "penguins"])
def test_probabilities_sum_to_one_and_the_label_is_the_likeliest(
    name: str, request: pytest.FixtureRequest
) -> None:
    trained: Trained = request.getfixturevalue(name)
    rows = trained.result.x_test
    found = probabilities(trained, rows)
    assert found.shape == (len(rows), len(trained.result.schema.target.classes or ()))
    np.testing.assert_allclose(found.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(trained.result.pipeline.predict(rows), found.argmax(axis=1))


def test_a_month_to_month_contract_makes_churn_likelier(churn: Trained) -> None:
    j, monthly = code_of(churn, "contract", "month-to-month")
    _, two_year = code_of(churn, "contract", "two year")
    rows = churn.result.x_test
    churned = churn.result.schema.target.classes.index("yes")  # type: ignore[union-attr]
    risk = probabilities(churn, with_value(rows, j, monthly))[:, churned]
    safe = probabilities(churn, with_value(rows, j, two_year))[:, churned]
    assert (risk > safe).mean() > 0.9
    assert risk.mean() - safe.mean() > 0.2


def test_short_bills_are_adelie(penguins: Trained) -> None:
    schema = penguins.result.schema
    rows = penguins.result.x_test
    adelie = (schema.target.classes or ()).index("Adelie")
    bill = schema.names.index("bill_length_mm")
    short = probabilities(penguins, with_value(rows, bill, 36))[:, adelie]
    long = probabilities(penguins, with_value(rows, bill, 52))[:, adelie]
    assert short.mean() - long.mean() > 0.4
