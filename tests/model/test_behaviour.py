"""The model behaves like a house-price model: quality, direction, invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    assert result.holdout.r2 >= 0.75
    assert result.holdout.rmse <= 4.5
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
    # Every held-out home, the rest fixed, is worth more with 7 rooms than with 6.
    assert (
        predictor.predict(with_value(rows, RM, 7)).values
        > predictor.predict(with_value(rows, RM, 6)).values
    ).all()
    curve = partial_dependence(predictor, rows, RM, evidence_grid(result, RM))
    assert (np.diff(curve) >= -STEP_TOLERANCE).all()
    assert curve[-1] - curve[0] > TREND


def test_higher_lstat_lowers_the_price(
    trained: tuple[Path, TrainingResult], predictor: Predictor
) -> None:
    _, result = trained
    rows = result.x_test
    low = predictor.predict(with_value(rows, LSTAT, 10)).values
    assert (predictor.predict(with_value(rows, LSTAT, 20)).values < low).all()
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
