"""ONNX conversion of the fitted pipeline, with one repair to skl2onnx's tree converter.

skl2onnx writes a Python `False` into the integer list `nodes_missing_value_tracks_true` for
every leaf of a histogram gradient boosting tree, which current onnx refuses ("expected an int,
got a boolean"). The repair registers the same converters behind a container that writes those
flags as integers; the graph is otherwise skl2onnx's own. Histogram gradient boosting's native
categorical splits are not converted by skl2onnx (their bitsets are dropped), so the candidates
one-hot encode categories instead.
"""

from __future__ import annotations

from typing import Any

_FLAGS = "nodes_missing_value_tracks_true"
_registered = False


class _IntegerFlags:
    """A converter container that passes every call on, writing missing-value flags as ints."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        if _FLAGS in attrs:
            attrs[_FLAGS] = [int(flag) for flag in attrs[_FLAGS]]
        return self._container.add_node(*args, **attrs)


def _integer_flags(convert: Any) -> Any:
    def converter(scope: Any, operator: Any, container: Any) -> Any:
        return convert(scope, operator, _IntegerFlags(container))

    return converter


def register() -> None:
    """Register the repaired histogram gradient boosting converters (once per process)."""
    global _registered  # noqa: PLW0603 - one registration per process
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
        convert_sklearn_random_forest_regressor_converter,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    update_registered_converter(
        HistGradientBoostingRegressor,
        "SklearnHistGradientBoostingRegressor",
        calculate_linear_regressor_output_shapes,
        _integer_flags(convert_sklearn_random_forest_regressor_converter),
        options={"raw_scores": [True, False]},
    )
    update_registered_converter(
        HistGradientBoostingClassifier,
        "SklearnHistGradientBoostingClassifier",
        calculate_linear_classifier_output_shapes,
        _integer_flags(convert_sklearn_random_forest_classifier),
        options={
            "zipmap": [True, False, "columns"],
            "raw_scores": [True, False],
            "output_class_labels": [False, True],
            "nocl": [True, False],
        },
    )
    _registered = True
