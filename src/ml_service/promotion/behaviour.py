"""Behaviour checks of a challenger (its policy's direction and invariance checks), run on the
compared rows through the served ONNX predictor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml_service.model.schema import FloatArray, ModelSchema
from ml_service.predictor import Predictor
from ml_service.promotion.policy import Direction, Invariance, Policy

SHUFFLE_SEED = 0


@dataclass(frozen=True)
class Outcome:
    """One check, in words, and whether it passed."""

    text: str
    passed: bool


def run(
    policy: Policy, schema: ModelSchema, predictor: Predictor, rows: FloatArray
) -> list[Outcome]:
    """Every check of `policy` on `rows` (the challenger's checked row matrix)."""
    found = [direction(c, schema, predictor, rows) for c in policy.direction]
    found += [invariance(c, schema, predictor, rows) for c in policy.invariance]
    return found


def _output(
    schema: ModelSchema, predictor: Predictor, rows: FloatArray, label: str | None
) -> FloatArray:
    """The watched answer per row: a regressor's value, or one class's probability."""
    answer = predictor.predict(rows)
    if answer.values is not None:
        return answer.values
    classes = [str(c) for c in schema.target.classes or ()]
    k = classes.index(label) if label is not None else len(classes) - 1
    return np.asarray(answer.probabilities)[:, k]


def _watched(schema: ModelSchema, label: str | None) -> str:
    if schema.target.classes is None:
        return "the prediction"
    classes = [str(c) for c in schema.target.classes]
    return f"P({label if label is not None else classes[-1]})"


def _set(schema: ModelSchema, rows: FloatArray, feature: str, value: float | str) -> FloatArray:
    j = schema.names.index(feature)
    changed = rows.copy()
    changed[:, j] = schema.features[j].encode(value)
    return changed


def direction(
    check: Direction, schema: ModelSchema, predictor: Predictor, rows: FloatArray
) -> Outcome:
    low = _output(
        schema, predictor, _set(schema, rows, check.feature, check.start), check.target_class
    )
    high = _output(
        schema, predictor, _set(schema, rows, check.feature, check.end), check.target_class
    )
    moved = (high - low) * check.sign
    share = float((moved > 0).mean()) if len(moved) else 0.0
    mean = float((high - low).mean()) if len(moved) else 0.0
    way = "up" if check.sign > 0 else "down"
    passed = share >= check.min_share and moved.mean() > 0
    watched = _watched(schema, check.target_class)
    text = (
        f"direction: {check.feature} {check.start} → {check.end} moves {watched} {way} in "
        f"{share:.0%} of rows (at least {check.min_share:.0%} wanted), by {mean:+.4g} on average"
    )
    return Outcome(text, bool(passed))


def invariance(
    check: Invariance, schema: ModelSchema, predictor: Predictor, rows: FloatArray
) -> Outcome:
    j = schema.names.index(check.feature)
    shuffled = rows.copy()
    shuffled[:, j] = np.random.default_rng(SHUFFLE_SEED).permutation(rows[:, j])
    before = _output(schema, predictor, rows, check.target_class)
    after = _output(schema, predictor, shuffled, check.target_class)
    moved = float(np.max(np.abs(after - before))) if len(rows) else 0.0
    text = (
        f"invariance: shuffling {check.feature} moves {_watched(schema, check.target_class)} by "
        f"at most {moved:.4g} (tolerance {check.tolerance:g})"
    )
    return Outcome(text, moved <= check.tolerance)
