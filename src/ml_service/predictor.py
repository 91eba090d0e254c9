"""The predictor: an artifact's ONNX graph in onnxruntime, one session per worker process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ml_service.errors import ArtifactError
from ml_service.model.artifact import ONNX_INPUT, ServingArtifact
from ml_service.model.schema import FloatArray

IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class Prediction:
    """What a model answered for N rows: a regressor's values, or a classifier's class indices
    (into `schema.target.classes`) and probabilities (N, K)."""

    values: FloatArray | None = None
    classes: IntArray | None = None
    probabilities: FloatArray | None = None

    def __len__(self) -> int:
        found = self.values if self.values is not None else self.classes
        return 0 if found is None else len(found)


class Predictor:
    """Predicts from an (N, F) float64 matrix of already validated rows."""

    def __init__(self, artifact: ServingArtifact, threads: int = 1) -> None:
        options = ort.SessionOptions()
        # One worker per core is the unit of scaling; threads inside a worker only contend.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        onnx_file = artifact.path / "model.onnx"
        try:
            session = ort.InferenceSession(
                artifact.onnx_model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(
                f"{onnx_file}: onnxruntime {ort.__version__} cannot load it "
                f"({str(exc).splitlines()[0]}); it may come from an incompatible library version"
            ) from exc
        schema = artifact.schema
        self.n_features = len(schema.features)
        inputs = session.get_inputs()
        if [i.name for i in inputs] != [ONNX_INPUT] or inputs[0].shape[1] != self.n_features:
            raise ArtifactError(
                f"{onnx_file}: its input does not match the schema's {self.n_features} features"
            )
        outputs = [o.name for o in session.get_outputs()]
        self.classifier = schema.target.classes is not None
        if self.classifier and len(outputs) < 2:
            raise ArtifactError(
                f"{onnx_file}: a classifier's graph needs label and probability outputs, "
                f"it has {outputs}"
            )
        self._outputs = outputs[:2] if self.classifier else outputs[:1]
        # The session's own run, without the Python wrapper's per-call checks (input names,
        # OrtValue ownership, provider fallback), which hold by construction: one input, a numpy
        # array, the CPU provider only. Its cost is most of a one-row prediction otherwise.
        self._run = session._sess.run
        self._session = session

    def predict(self, rows: FloatArray) -> Prediction:
        """One answer per row, in row order."""
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected shape (N, {self.n_features}), got {rows.shape}")
        feed = {ONNX_INPUT: rows.astype(np.float32)}
        if self.classifier:
            if rows.shape[0] == 0:
                return Prediction(
                    classes=np.empty(0, dtype=np.int64), probabilities=np.empty((0, 0))
                )
            labels, probabilities = self._run(self._outputs, feed, None)
            return Prediction(
                classes=np.asarray(labels, dtype=np.int64).ravel(),
                probabilities=np.asarray(probabilities, dtype=np.float64),
            )
        if rows.shape[0] == 0:
            return Prediction(values=np.empty(0, dtype=np.float64))
        (out,) = self._run(self._outputs, feed, None)
        return Prediction(values=np.asarray(out).ravel().astype(np.float64))
