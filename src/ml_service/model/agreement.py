"""How closely the ONNX graph reproduces the scikit-learn pipeline, and the bound it must keep.

onnxruntime computes in float32 where scikit-learn uses float64 (sums of tree leaves, linear
terms, probabilities), so the two differ in the last digits. The bounds:

- regression: |ONNX - scikit-learn| <= `REGRESSION_TOLERANCE` * max(1, largest |target| seen in
  training), i.e. a hundredth of a percent of the target's scale;
- classification: every probability within `PROBABILITY_TOLERANCE`, and the same label for
  every row whose two most likely classes are further apart than that.

Training measures this on every training and held-out row before it writes an artifact, refuses
a graph that breaks it, and records the figures in the model card.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_service.model.schema import FloatArray

REGRESSION_TOLERANCE = 1e-4
PROBABILITY_TOLERANCE = 1e-4


def run_onnx(onnx_model: bytes, rows: FloatArray) -> list[Any]:
    """Every output of the graph for `rows` (cast to float32, as the server does)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
    return list(session.run(None, {session.get_inputs()[0].name: rows.astype(np.float32)}))


def measure(
    onnx_model: bytes, pipeline: Any, rows: FloatArray, classes: int, target_scale: float
) -> dict[str, Any]:
    """The largest differences on `rows`, the bound, and whether it holds."""
    outputs = run_onnx(onnx_model, rows)
    if classes == 0:
        expected = np.asarray(pipeline.predict(rows), dtype=np.float64)
        diff = float(np.max(np.abs(np.asarray(outputs[0], dtype=np.float64).ravel() - expected)))
        bound = REGRESSION_TOLERANCE * max(1.0, target_scale)
        return {"rows": len(rows), "max_abs_diff": diff, "bound": bound, "holds": diff <= bound}
    labels = np.asarray(outputs[0]).ravel()
    probabilities = np.asarray(outputs[1], dtype=np.float64)
    expected = np.zeros((len(rows), classes))
    expected[:, pipeline.classes_] = pipeline.predict_proba(rows)
    diff = float(np.max(np.abs(probabilities - expected)))
    top = np.sort(expected, axis=1)
    clear = (top[:, -1] - top[:, -2]) > PROBABILITY_TOLERANCE
    label_mismatches = int(np.count_nonzero((labels != expected.argmax(axis=1)) & clear))
    return {
        "rows": len(rows),
        "max_abs_diff": diff,
        "label_mismatches": label_mismatches,
        "bound": PROBABILITY_TOLERANCE,
        "holds": diff <= PROBABILITY_TOLERANCE and label_mismatches == 0,
    }
